package server

import "regexp"

// Claude Code starts its system prompt with an attribution line such as
//
//	x-anthropic-billing-header: cc_version=2.1.177.01c; cc_entrypoint=cli; cch=36ee5;
//
// whose cc_version suffix and cch checksum change from request to request.
// At the very top of the prompt it would make every request differ from the
// cached one at token 0 and defeat prefix reuse, so the server removes the
// header (its key=value; pairs and the rest of its line if blank) before
// rendering. The line is billing metadata for Anthropic's API and carries
// nothing for the model.
var billingHeader = regexp.MustCompile(`(?m)^[ \t]*x-anthropic-billing-header:(?:[ \t]*[A-Za-z0-9_.-]+=[^;\n]*;)*[ \t]*(?:\r?\n)?`)

// normalizeSystem removes volatile client attribution from system text.
func normalizeSystem(s string) string {
	return billingHeader.ReplaceAllString(s, "")
}
