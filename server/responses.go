package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

// OpenAI's Responses API (POST /v1/responses), the protocol Codex speaks.
// The input items become chat turns for the model's template, the model's
// output is parsed as for chat completions, and the answer is a response
// object with reasoning, message and function_call output items, or (when
// streamed) the event sequence OpenAI emits for them.

type respRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Instructions       *string         `json:"instructions"`
	Tools              []respTool      `json:"tools"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls"`
	MaxOutputTokens    *int            `json:"max_output_tokens"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	Stream             bool            `json:"stream"`
	Store              *bool           `json:"store"`
	PreviousResponseID string          `json:"previous_response_id"`
	// PromptCacheKey is only a hint for OpenAI's routing; here every
	// request goes through the same prefix cache.
	PromptCacheKey string `json:"prompt_cache_key"`
	Reasoning      *struct {
		Effort  *string `json:"effort"`
		Summary *string `json:"summary"`
	} `json:"reasoning"`
	Metadata map[string]string `json:"metadata"`
	// Text.Format is text, json_object or json_schema, enforced by
	// constrained decoding.
	Text *struct {
		Format json.RawMessage `json:"format"`
	} `json:"text"`
	// include, truncation, user, service_tier, ... are accepted and
	// ignored.
}

type respTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Tools       []respTool      `json:"tools,omitempty"` // namespace: its functions
}

// respItem is one input item. Messages may leave out the type.
type respItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Namespace string          `json:"namespace"`
	Arguments json.RawMessage `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	Summary   []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

// respText reads item content: a string or parts with text.
func respText(raw json.RawMessage, field string) (string, *apiError) {
	return textContent(raw, field, "input_text", "output_text", "text", "summary_text", "reasoning_text", "refusal")
}

// messages turns instructions and input items into chat turns. Function
// calls join the assistant turn they follow, a reasoning item becomes the
// next assistant turn's reasoning.
func (req *respRequest) messages(history []Message) ([]Message, *apiError) {
	out := append([]Message(nil), history...)
	if req.Instructions != nil && *req.Instructions != "" {
		// Instructions apply to this request only (OpenAI does not carry
		// them over previous_response_id), so they lead the turns.
		out = append([]Message{{Role: "system", Content: *req.Instructions}}, out...)
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return nil, invalid("input", "input: field required")
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		return append(out, Message{Role: "user", Content: text}), nil
	}
	var items []respItem
	if err := json.Unmarshal(req.Input, &items); err != nil {
		return nil, invalid("input", "input: expected a string or an array of input items")
	}
	names := map[string]string{}
	for _, m := range out {
		for _, c := range m.ToolCalls {
			names[c.ID] = c.Name
		}
	}
	reasoning := ""
	// assistant returns the assistant turn to extend: the last one when
	// nothing followed it, else a new one.
	assistant := func() *Message {
		if n := len(out); n > 0 && out[n-1].Role == "assistant" {
			return &out[n-1]
		}
		out = append(out, Message{Role: "assistant", ReasoningContent: reasoning})
		reasoning = ""
		return &out[len(out)-1]
	}
	for i, it := range items {
		field := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "message", "":
			content, e := respText(it.Content, field+".content")
			if e != nil {
				return nil, e
			}
			switch it.Role {
			case "user":
				out = append(out, Message{Role: "user", Content: content})
			case "system", "developer":
				out = append(out, Message{Role: "system", Content: content})
			case "assistant":
				if n := len(out); n > 0 && out[n-1].Role == "assistant" && out[n-1].Content == "" && len(out[n-1].ToolCalls) == 0 {
					out[n-1].Content = content
				} else {
					out = append(out, Message{Role: "assistant", Content: content, ReasoningContent: reasoning})
					reasoning = ""
				}
			default:
				return nil, invalid(field+".role", "%s.role %q is not one of user, assistant, system, developer", field, it.Role)
			}
		case "function_call":
			if it.Name == "" {
				return nil, invalid(field+".name", "%s.name is required", field)
			}
			args := jsonText(it.Arguments)
			if !isJSONObject(args) {
				args = "{}"
			}
			a := assistant()
			a.ToolCalls = append(a.ToolCalls, ToolCall{ID: it.CallID, Name: it.Name, Arguments: args})
			names[it.CallID] = it.Name
		case "function_call_output":
			output, e := respText(it.Output, field+".output")
			if e != nil {
				return nil, e
			}
			out = append(out, Message{Role: "tool", Content: output, ToolCallID: it.CallID, Name: names[it.CallID]})
		case "reasoning":
			var texts []string
			for _, s := range it.Summary {
				texts = append(texts, s.Text)
			}
			content, _ := respText(it.Content, field+".content")
			if content != "" {
				texts = []string{content} // the full reasoning, when sent back
			}
			reasoning += strings.Join(texts, "\n")
		default:
			// Items for tools this server does not offer (web_search_call,
			// local_shell_call, item_reference, ...) carry nothing the
			// model could continue from.
		}
	}
	if !conversed(out) {
		return nil, invalid("input", "input: at least one user or assistant item is required")
	}
	return out, nil
}

// tools reads function tools (functions inside namespaces too) and the tool
// choice. Other tool types (web_search, file_search, ...) do not exist
// here and are not offered to the model; their names are returned for the
// log.
func (req *respRequest) tools() (tools []Tool, namespaces map[string]string, skipped []string, e *apiError) {
	namespaces = map[string]string{}
	var add func(ts []respTool, ns, field string) *apiError
	add = func(ts []respTool, ns, field string) *apiError {
		for i, t := range ts {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch t.Type {
			case "function":
				if t.Name == "" {
					return invalid(f+".name", "%s.name is required", f)
				}
				if _, dup := namespaces[t.Name]; dup {
					continue
				}
				namespaces[t.Name] = ns
				tools = append(tools, Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
			case "namespace":
				if e := add(t.Tools, t.Name, f+".tools"); e != nil {
					return e
				}
			default:
				skipped = append(skipped, t.Type)
			}
		}
		return nil
	}
	if e := add(req.Tools, "", "tools"); e != nil {
		return nil, nil, nil, e
	}
	mode, only, e := toolChoice(req.ToolChoice)
	if e != nil {
		return nil, nil, nil, e
	}
	tools, e = chooseTools(tools, mode, only)
	return tools, namespaces, skipped, e
}

// respJob is a prepared Responses request.
type respJob struct {
	*job
	req        *respRequest
	history    []Message // the conversation this response continues (for store)
	namespaces map[string]string
	summary    bool // reasoning goes to the summary (reasoning.summary set)
	parallel   bool
}

func (s *Server) respJob(req *respRequest) (*respJob, *apiError) {
	if e := s.checkModel(req.Model); e != nil {
		return nil, e
	}
	var history []Message
	if req.PreviousResponseID != "" {
		h, ok := s.stored.get(req.PreviousResponseID)
		if !ok {
			return nil, &apiError{kind: errNotFound, param: "previous_response_id",
				msg: fmt.Sprintf("previous_response_id %q is not stored here (responses are kept in memory while store is true, and lost on restart)", req.PreviousResponseID)}
		}
		history = h
	}
	msgs, e := req.messages(history)
	if e != nil {
		return nil, e
	}
	tools, namespaces, skipped, e := req.tools()
	if e != nil {
		return nil, e
	}
	if len(skipped) > 0 {
		s.cfg.Logger.Info("responses: tools of these types are not offered to the model", "types", strings.Join(skipped, ","))
	}
	sampling, e := s.sampling(req.Temperature, req.TopP, nil, nil, nil, nil, nil)
	if e != nil {
		return nil, e
	}
	p := ChatPrompt{Messages: msgs, Tools: tools, AddGenerationPrompt: true}
	rj := &respJob{req: req, namespaces: namespaces, parallel: req.ParallelToolCalls == nil || *req.ParallelToolCalls}
	if r := req.Reasoning; r != nil {
		if r.Effort != nil {
			on := *r.Effort != "none" && *r.Effort != "minimal"
			p.Kwargs = map[string]any{"enable_thinking": on}
		}
		rj.summary = r.Summary != nil && *r.Summary != "" && *r.Summary != "none"
	}
	j, e := s.chatJob(p, len(tools) > 0, req.MaxOutputTokens, sampling, nil)
	if e != nil {
		if e.param == "max_tokens" {
			e.param = "max_output_tokens"
			e.msg = strings.Replace(e.msg, "max_tokens", "max_output_tokens", 1)
		}
		return nil, e
	}
	rj.job = j
	if forcedChoice(req.ToolChoice) {
		if e := s.forceTools(j, tools, true, "tool_choice"); e != nil {
			return nil, e
		}
	} else if req.Text != nil {
		g, e := formatGrammar(req.Text.Format, "text.format")
		if e != nil {
			return nil, e
		}
		if g != nil {
			if e := s.constrainJob(j, g, "text.format"); e != nil {
				return nil, e
			}
		}
	}
	// What the next response may continue from, without instructions.
	rj.history = msgs
	if req.Instructions != nil && *req.Instructions != "" {
		rj.history = msgs[1:]
	}
	return rj, nil
}

// respBuilder assembles output items from parser events, in order, and
// reports each step to an optional streaming callback.
type respBuilder struct {
	rj     *respJob
	items  []map[string]any
	open   string // type of the item being written: "message", "reasoning", "function_call" or ""
	text   strings.Builder
	calls  int
	events func(typ string, data map[string]any) error // nil when not streaming
	reply  Message                                     // the assistant turn, for store
}

func (b *respBuilder) emit(typ string, data map[string]any) error {
	if b.events == nil {
		return nil
	}
	return b.events(typ, data)
}

func (b *respBuilder) cur() map[string]any { return b.items[len(b.items)-1] }

func (b *respBuilder) index() int { return len(b.items) - 1 }

// start opens a new output item.
func (b *respBuilder) start(item map[string]any) error {
	if err := b.finish(); err != nil {
		return err
	}
	b.items = append(b.items, item)
	b.open = item["type"].(string)
	b.text.Reset()
	added := map[string]any{}
	for k, v := range item {
		added[k] = v
	}
	added["status"] = "in_progress"
	if err := b.emit("response.output_item.added", map[string]any{"output_index": b.index(), "item": added}); err != nil {
		return err
	}
	switch b.open {
	case "message":
		return b.emit("response.content_part.added", map[string]any{"item_id": item["id"], "output_index": b.index(),
			"content_index": 0, "part": outputText("")})
	case "reasoning":
		if b.rj.summary {
			return b.emit("response.reasoning_summary_part.added", map[string]any{"item_id": item["id"], "output_index": b.index(),
				"summary_index": 0, "part": map[string]any{"type": "summary_text", "text": ""}})
		}
	}
	return nil
}

func outputText(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

// add appends text to the open item of typ, opening one if needed.
func (b *respBuilder) add(typ, text string) error {
	if b.open != typ {
		item := map[string]any{"type": typ}
		switch typ {
		case "message":
			item["id"], item["role"], item["content"] = newID("msg_"), "assistant", []any{}
		case "reasoning":
			item["id"], item["summary"] = newID("rs_"), []any{}
		}
		if err := b.start(item); err != nil {
			return err
		}
	}
	b.text.WriteString(text)
	it := b.cur()
	switch typ {
	case "message":
		b.reply.Content += text
		return b.emit("response.output_text.delta", map[string]any{"item_id": it["id"], "output_index": b.index(),
			"content_index": 0, "delta": text, "logprobs": []any{}})
	case "reasoning":
		b.reply.ReasoningContent += text
		if b.rj.summary {
			return b.emit("response.reasoning_summary_text.delta", map[string]any{"item_id": it["id"], "output_index": b.index(),
				"summary_index": 0, "delta": text})
		}
		return b.emit("response.reasoning_text.delta", map[string]any{"item_id": it["id"], "output_index": b.index(),
			"content_index": 0, "delta": text})
	case "function_call":
		return b.emit("response.function_call_arguments.delta", map[string]any{"item_id": it["id"], "output_index": b.index(),
			"delta": text})
	}
	return nil
}

// finish closes the open item: its done events and the completed item.
func (b *respBuilder) finish() error {
	if b.open == "" {
		return nil
	}
	it, text := b.cur(), b.text.String()
	typ := b.open
	b.open = ""
	var err error
	switch typ {
	case "message":
		part := outputText(text)
		it["content"] = []any{part}
		err = firstErr(
			func() error {
				return b.emit("response.output_text.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
					"content_index": 0, "text": text, "logprobs": []any{}})
			},
			func() error {
				return b.emit("response.content_part.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
					"content_index": 0, "part": part})
			})
	case "reasoning":
		if b.rj.summary {
			part := map[string]any{"type": "summary_text", "text": text}
			it["summary"] = []any{part}
			err = firstErr(
				func() error {
					return b.emit("response.reasoning_summary_text.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
						"summary_index": 0, "text": text})
				},
				func() error {
					return b.emit("response.reasoning_summary_part.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
						"summary_index": 0, "part": part})
				})
		} else {
			it["content"] = []any{map[string]any{"type": "reasoning_text", "text": text}}
			err = b.emit("response.reasoning_text.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
				"content_index": 0, "text": text})
		}
	case "function_call":
		it["arguments"] = text
		b.reply.ToolCalls = append(b.reply.ToolCalls, ToolCall{ID: it["call_id"].(string), Name: it["name"].(string), Arguments: text})
		err = b.emit("response.function_call_arguments.done", map[string]any{"item_id": it["id"], "output_index": b.index(),
			"name": it["name"], "arguments": text})
	}
	if err != nil {
		return err
	}
	it["status"] = "completed"
	return b.emit("response.output_item.done", map[string]any{"output_index": b.index(), "item": it})
}

func firstErr(fs ...func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// event takes one parser event. Without parallel tool calls, calls after
// the first are dropped.
func (b *respBuilder) event(ev toolcall.Event) error {
	switch ev.Kind {
	case toolcall.Content:
		return b.add("message", ev.Text)
	case toolcall.Reasoning:
		return b.add("reasoning", ev.Text)
	case toolcall.CallStart:
		b.calls++
		if b.calls > 1 && !b.rj.parallel {
			return b.finish()
		}
		item := map[string]any{"type": "function_call", "id": newID("fc_"), "call_id": newID("call_"), "name": ev.Name, "arguments": ""}
		if ns := b.rj.namespaces[ev.Name]; ns != "" {
			item["namespace"] = ns
		}
		return b.start(item)
	case toolcall.CallArgs:
		if b.open == "function_call" {
			return b.add("function_call", ev.Text)
		}
	case toolcall.CallEnd:
		if b.open == "function_call" {
			return b.finish()
		}
	}
	return nil
}

// response is the response object in its current state.
func (s *Server) response(rj *respJob, id string, created int64, status string, items []map[string]any, out *outcome) map[string]any {
	req := rj.req
	output := make([]any, len(items))
	for i, it := range items {
		output[i] = it
	}
	var instructions, prev, maxOut any
	if req.Instructions != nil {
		instructions = *req.Instructions
	}
	if req.PreviousResponseID != "" {
		prev = req.PreviousResponseID
	}
	if req.MaxOutputTokens != nil {
		maxOut = *req.MaxOutputTokens
	}
	toolChoice := any("auto")
	if len(req.ToolChoice) > 0 && string(req.ToolChoice) != "null" {
		toolChoice = json.RawMessage(req.ToolChoice)
	}
	tools := []any{}
	for _, t := range req.Tools {
		tools = append(tools, t)
	}
	reasoning := map[string]any{"effort": nil, "summary": nil}
	if r := req.Reasoning; r != nil {
		reasoning = map[string]any{"effort": r.Effort, "summary": r.Summary}
	}
	format := any(map[string]any{"type": "text"})
	if req.Text != nil && len(req.Text.Format) > 0 && string(req.Text.Format) != "null" {
		format = req.Text.Format // echoed as sent
	}
	metadata := req.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	resp := map[string]any{
		"id": id, "object": "response", "created_at": created, "status": status, "model": s.b.ModelID(),
		"output": output, "error": nil, "incomplete_details": nil, "instructions": instructions,
		"metadata": metadata, "parallel_tool_calls": rj.parallel, "temperature": rj.sampling.Temperature,
		"top_p": rj.sampling.TopP, "tool_choice": toolChoice, "tools": tools, "max_output_tokens": maxOut,
		"previous_response_id": prev, "reasoning": reasoning, "store": req.Store == nil || *req.Store,
		"text": map[string]any{"format": format}, "truncation": "disabled",
		"usage": nil, "user": nil,
	}
	if req.PromptCacheKey != "" {
		resp["prompt_cache_key"] = req.PromptCacheKey
	}
	if out != nil {
		resp["usage"] = respUsage(rj.job, out.res, rj.reasoningTokens(items, out))
		if status == "incomplete" {
			resp["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
		}
		if status != "in_progress" {
			resp["completed_at"] = time.Now().Unix()
		}
	}
	return resp
}

// reasoningTokens estimates the output tokens spent reasoning from the
// share of output text that was reasoning (the parser does not count
// tokens).
func (rj *respJob) reasoningTokens(items []map[string]any, out *outcome) int {
	var reasoning, total int
	for _, it := range items {
		n := len(marshal(it))
		total += n
		if it["type"] == "reasoning" {
			reasoning += n
		}
	}
	if total == 0 {
		return 0
	}
	return out.res.CompletionTokens * reasoning / total
}

func respUsage(j *job, r GenResult, reasoning int) map[string]any {
	return map[string]any{
		"input_tokens": len(j.prompt), "input_tokens_details": map[string]any{"cached_tokens": r.CachedTokens},
		"output_tokens": r.CompletionTokens, "output_tokens_details": map[string]any{"reasoning_tokens": reasoning},
		"total_tokens": len(j.prompt) + r.CompletionTokens,
	}
}

func respStatus(out outcome) string {
	if out.finish == "length" {
		return "incomplete"
	}
	return "completed"
}

// remember stores a finished response for previous_response_id, unless
// the request set store to false.
func (s *Server) remember(rj *respJob, id string, b *respBuilder) {
	if rj.req.Store != nil && !*rj.req.Store {
		return
	}
	reply := b.reply
	reply.Role = "assistant"
	s.stored.put(id, append(append([]Message(nil), rj.history...), reply))
}

func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	var req respRequest
	if e := decode(r, &req); e != nil {
		openAI.writeError(w, e)
		return
	}
	rj, e := s.respJob(&req)
	if e != nil {
		openAI.writeError(w, e)
		return
	}
	id, created := newID("resp_"), time.Now().Unix()
	if req.Stream {
		s.respStream(w, r, rj, id, created)
		return
	}
	b := &respBuilder{rj: rj}
	s.generate(w, r, openAI, rj.job, b.event, func(out outcome) {
		b.finish()
		s.remember(rj, id, b)
		writeJSON(w, http.StatusOK, s.response(rj, id, created, respStatus(out), validItems(b.items), &out))
	})
}

// validItems turns function calls whose arguments are not a JSON object (a
// model that broke its JSON) into message text, for non-streamed answers.
func validItems(items []map[string]any) []map[string]any {
	var out []map[string]any
	for _, it := range items {
		if it["type"] == "function_call" && !isJSONObject(it["arguments"].(string)) {
			it = map[string]any{"type": "message", "id": newID("msg_"), "role": "assistant", "status": "completed",
				"content": []any{outputText(it["arguments"].(string))}}
		}
		out = append(out, it)
	}
	if out == nil {
		out = []map[string]any{}
	}
	return out
}

// respFailed ends a Responses stream with response.failed carrying e (a
// failed generation, or the server shutting down); nil e: the client left.
func (s *Server) respFailed(sse *sseWriter, ev func(string, map[string]any) error, rj *respJob, id string, created int64,
	items []map[string]any, out *outcome, e *apiError) {
	if e == nil || sse.failed() {
		return
	}
	resp := s.response(rj, id, created, "failed", items, out)
	resp["error"] = map[string]any{"code": "server_error", "message": e.msg}
	ev("response.failed", map[string]any{"response": resp})
}

// respStream writes the Responses event stream: response.created and
// .in_progress, each output item's added/delta/done events, then
// response.completed (or .incomplete at max_output_tokens, .failed when
// the generation fails). Comments keep the stream alive while it waits.
func (s *Server) respStream(w http.ResponseWriter, r *http.Request, rj *respJob, id string, created int64) {
	t, e := s.admit()
	if e != nil {
		openAI.writeError(w, e)
		return
	}
	defer t.done()
	sse := newSSE(w, s.cfg.WriteTimeout)
	seq := 0
	ev := func(typ string, data map[string]any) error {
		data["type"] = typ
		data["sequence_number"] = seq
		seq++
		return sse.event(typ, data)
	}
	b := &respBuilder{rj: rj, events: ev}
	if ev("response.created", map[string]any{"response": s.response(rj, id, created, "in_progress", nil, nil)}) != nil {
		return
	}
	pings := startPings(s.cfg.PingInterval, func() error { return sse.write([]byte(": keep-alive\n\n")) })
	defer pings.end()
	if err := t.wait(r.Context()); err != nil {
		s.respFailed(sse, ev, rj, id, created, nil, nil, streamError(r.Context(), err))
		return
	}
	if ev("response.in_progress", map[string]any{"response": s.response(rj, id, created, "in_progress", nil, nil)}) != nil {
		return
	}
	out := s.run(r.Context(), rj.job, b.event)
	if out.err == nil {
		out.err = b.finish()
	}
	if out.err != nil {
		s.respFailed(sse, ev, rj, id, created, b.items, &out, streamError(r.Context(), out.err))
		return
	}
	s.remember(rj, id, b)
	status := respStatus(out)
	name := "response.completed"
	if status == "incomplete" {
		name = "response.incomplete"
	}
	ev(name, map[string]any{"response": s.response(rj, id, created, status, b.items, &out)})
}
