//go:build !chaosplant

package oracle

// plantedStaleReads is false in every build but one made with the
// chaosplant tag (plant_chaosplant.go).
const plantedStaleReads = false
