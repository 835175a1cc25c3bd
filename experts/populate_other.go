//go:build unix && !linux

package experts

// mapPopulate: other systems have no MAP_POPULATE; pages fault in when
// first written.
const mapPopulate = 0
