// Access to the vendored uPlot chart library, which index.html loads as a
// classic script before the modules (it defines the global uPlot), and the
// chart settings the views share.

/* global uPlot */

// chartsLoaded reports whether the chart library is available.
export function chartsLoaded() {
  return typeof uPlot !== "undefined";
}

// newChart draws a chart into box and returns it (destroy() removes it).
export function newChart(opts, data, box) {
  return new uPlot(opts, data, box);
}

// barPaths draws a series as bars where the library supports it.
export function barPaths() {
  return uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 24] }) : undefined;
}

// timeRange keeps a chart's time axis sensible with a single point.
export function timeRange(u, min, max) {
  return min === max ? [min - 60, max + 60] : [min, max];
}
