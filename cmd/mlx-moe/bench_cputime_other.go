//go:build !unix

package main

import "time"

const haveCPUTime = false

func processCPUTime() time.Duration { return 0 }
