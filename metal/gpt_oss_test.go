package metal

import "strings"

// gptOSSFixture reports whether a fixture is gpt-oss's. Its clamped
// experts have no slot (event-form) kernels yet, and its sink attention
// keeps float32 KV caches, so the event-form and compact-KV tests leave it
// out; TestFixturesOnHarness and TestPagedExpertsOnHarness run it.
func gptOSSFixture(name string) bool { return strings.HasPrefix(name, "gpt_oss") }
