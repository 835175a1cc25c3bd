package experts

import "syscall"

// mapPopulate makes mmap fault every page in at once.
const mapPopulate = syscall.MAP_POPULATE
