package server

import (
	"regexp"
	"strings"
)

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

// render renders a conversation with the model's template. A template that
// refuses a system turn after the conversation has started (some raise
// "System message must be at the beginning") gets those turns as user-side
// notes instead: each is wrapped in <system-reminder> tags, the convention
// Claude Code itself uses for out-of-band instructions, and joined to the
// next user turn (or the previous one, or standing alone as a user turn).
func (s *Server) render(p ChatPrompt) (string, []int, error) {
	text, ids, err := s.b.RenderChat(p)
	if err == nil || !hasLateSystem(p.Messages) {
		return text, ids, err
	}
	p.Messages = systemAsNotes(p.Messages)
	text, ids, err2 := s.b.RenderChat(p)
	if err2 != nil {
		return "", nil, err // the original complaint names the real problem
	}
	return text, ids, nil
}

// hasLateSystem reports whether a system turn follows a user or assistant one.
func hasLateSystem(msgs []Message) bool {
	for i, m := range msgs {
		if m.Role == "system" && conversed(msgs[:i]) {
			return true
		}
	}
	return false
}

// systemAsNotes moves system turns after the first user or assistant turn
// into user turns as <system-reminder> notes.
func systemAsNotes(msgs []Message) []Message {
	var out []Message
	var pending []string // notes waiting for the next user turn
	for i, m := range msgs {
		if m.Role != "system" || !conversed(msgs[:i]) {
			if m.Role == "user" && len(pending) > 0 {
				m.Content = joinNotes(pending) + "\n" + m.Content
				pending = nil
			}
			out = append(out, m)
			continue
		}
		pending = append(pending, m.Content)
	}
	if len(pending) > 0 {
		if n := len(out); out[n-1].Role == "user" {
			out[n-1].Content += "\n" + joinNotes(pending)
		} else {
			out = append(out, Message{Role: "user", Content: joinNotes(pending)})
		}
	}
	return out
}

func joinNotes(notes []string) string {
	var b strings.Builder
	for i, n := range notes {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("<system-reminder>\n" + n + "\n</system-reminder>")
	}
	return b.String()
}

// cachePoints finds where the system prompt and tool definitions end in
// the rendered prompt ids: the template renders the leading system turns
// and the tools alone, and the common prefix of the two token sequences is
// the part every conversation with that system prompt and those tools
// shares. None when there is no system prompt or tools, or the template
// cannot render them alone.
func (s *Server) cachePoints(p ChatPrompt, ids []int) []int {
	var head []Message
	for _, m := range p.Messages {
		if m.Role != "system" {
			break
		}
		head = append(head, m)
	}
	if len(head) == 0 && len(p.Tools) == 0 {
		return nil
	}
	_, prefix, err := s.b.RenderChat(ChatPrompt{Messages: head, Tools: p.Tools, Kwargs: p.Kwargs})
	if err != nil {
		return nil
	}
	n := 0
	for n < len(prefix) && n < len(ids) && prefix[n] == ids[n] {
		n++
	}
	if n == 0 || n >= len(ids)-1 {
		return nil
	}
	return []int{n}
}
