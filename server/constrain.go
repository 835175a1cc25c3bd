package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
	"github.com/mlx-moe/mlx-moe/constrain"
)

// Structured output (response_format, text.format) and forced tool use
// (tool_choice required/named, any/tool) are enforced by constrained
// decoding: a mask from package constrain over each step's logits. A forced
// call is written in the model's own tool-call markup, so the usual parser
// reads it back.

// TokenVocabulary is implemented by backends that support constrained
// decoding.
type TokenVocabulary interface {
	// TokenBytes lists the bytes each token id writes (nil for tokens
	// never generated under a constraint, such as special tokens) and the
	// end-of-sequence ids.
	TokenBytes() (tokens [][]byte, eos []int)
}

// vocabCache builds the backend's constrain.Vocabulary once.
type vocabCache struct {
	once sync.Once
	v    *constrain.Vocabulary
}

func (s *Server) vocabulary() *constrain.Vocabulary {
	s.vocab.once.Do(func() {
		if tv, ok := s.b.(TokenVocabulary); ok {
			toks, eos := tv.TokenBytes()
			s.vocab.v = constrain.NewVocabulary(toks, eos)
		}
	})
	return s.vocab.v
}

// constrainJob makes j's output follow g, after closing a <think> the
// prompt opened (the reasoning is left empty).
func (s *Server) constrainJob(j *job, g *constrain.Grammar, param string) *apiError {
	v := s.vocabulary()
	if v == nil {
		return invalid(param, "%s needs constrained decoding, which this backend does not support", param)
	}
	if j.parse != nil && j.parse.InThinking {
		g = constrain.Wrap("</think>\n\n", g, "")
	}
	c := constrain.New(g, v)
	c.Budget = j.maxTokens
	j.mask = c.Mask
	return nil
}

// responseFormat is chat's response_format, or (flattened) the Responses
// API's text.format.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
	Schema json.RawMessage `json:"schema"`
}

// formatGrammar compiles a response format; nil for plain text.
func formatGrammar(raw json.RawMessage, param string) (*constrain.Grammar, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f responseFormat
	if json.Unmarshal(raw, &f) != nil {
		return nil, invalid(param, "%s: expected an object with a type", param)
	}
	switch f.Type {
	case "text", "":
		return nil, nil
	case "json_object":
		return constrain.JSONObject(constrain.Limits{}), nil
	case "json_schema":
		schema := f.Schema
		if f.JSONSchema != nil {
			schema = f.JSONSchema.Schema
		}
		if len(schema) == 0 {
			return nil, invalid(param, "%s: json_schema needs a schema", param)
		}
		g, err := constrain.CompileSchema(schema, constrain.Limits{})
		if err != nil {
			return nil, schemaError(param+".schema", err)
		}
		return g, nil
	}
	return nil, invalid(param+".type", "%s.type %q is not one of text, json_object, json_schema", param, f.Type)
}

func schemaError(param string, err error) *apiError {
	var se *constrain.SchemaError
	if errors.As(err, &se) {
		return invalid(param, "%s: %v", param, se)
	}
	return invalid(param, "%s: %v", param, err)
}

// markupCalls are the formats that write arguments as key/value tags.
var markupCalls = map[toolcall.Format]func(name string, params []byte, l constrain.Limits) (*constrain.Grammar, error){
	toolcall.Qwen3Coder: constrain.XMLCall,
	toolcall.GLM:        constrain.GLMCall,
}

// toolGrammar is one call, to any of tools, in the model's markup.
func (s *Server) toolGrammar(tools []Tool, param string) (*constrain.Grammar, *apiError) {
	if len(tools) == 0 {
		return nil, invalid(param, "%s forces a tool call, but no tools are offered", param)
	}
	var calls []*constrain.Grammar
	for i, t := range tools {
		params := t.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		field := fmt.Sprintf("tools[%d] (%s) parameters", i, t.Name)
		if markup := markupCalls[s.format]; markup != nil {
			call, err := markup(t.Name, params, constrain.Limits{})
			if err != nil {
				return nil, schemaError(field, err)
			}
			calls = append(calls, call)
			continue
		}
		args, err := constrain.CompileSchema(params, constrain.Limits{})
		if err != nil {
			return nil, schemaError(field, err)
		}
		name, _ := json.Marshal(t.Name)
		switch s.format {
		case toolcall.Qwen3:
			calls = append(calls, constrain.Wrap("<tool_call>\n{\"name\": "+string(name)+", \"arguments\": ", args, "}\n</tool_call>"))
		case toolcall.DeepSeekV3:
			calls = append(calls, constrain.Wrap("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"+t.Name+"\n```json\n",
				args, "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"))
		default:
			return nil, invalid(param, "%s: forcing a tool call is not supported for the %s tool-call format", param, s.format)
		}
	}
	return constrain.Choice(calls...), nil
}

// forceTools constrains j to call one of tools when forced.
func (s *Server) forceTools(j *job, tools []Tool, forced bool, param string) *apiError {
	if !forced {
		return nil
	}
	g, e := s.toolGrammar(tools, param)
	if e != nil {
		return e
	}
	return s.constrainJob(j, g, param)
}

// forcedChoice reports whether an OpenAI tool_choice (chat or Responses)
// forces a call: "required" (also allowed_tools' mode) or a named function.
func forcedChoice(raw json.RawMessage) bool {
	mode, _, e := toolChoice(raw)
	return e == nil && (mode == "required" || mode == "named")
}
