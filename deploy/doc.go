// Package deploy holds what operators deploy beside the binaries:
// Prometheus recording and alert rules (prometheus/), a Grafana dashboard
// (grafana/), systemd units (systemd/) and the multi-process quickstart
// (quickstart.sh). It has no Go API; its tests check those files against a
// running member.
package deploy
