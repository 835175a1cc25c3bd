package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor adds the special tokens a model expects around a single
// sequence (what Hugging Face does for add_special_tokens=True).
type postProcessor interface {
	process(ids []int) []int
}

// template is TemplateProcessing's "single" template, resolved to ids:
// the sequence goes where seq is, the other ids around it.
type template struct {
	before, after []int
}

func (tp template) process(ids []int) []int {
	out := make([]int, 0, len(tp.before)+len(ids)+len(tp.after))
	out = append(out, tp.before...)
	out = append(out, ids...)
	return append(out, tp.after...)
}

type postSequence []postProcessor

func (seq postSequence) process(ids []int) []int {
	for _, p := range seq {
		ids = p.process(ids)
	}
	return ids
}

// parsePostProcessor reads tokenizer.json's "post_processor" (nil when it
// adds nothing).
func parsePostProcessor(raw json.RawMessage) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		return nil, nil // only adjusts offsets
	case "TemplateProcessing":
		return parseTemplate(raw)
	case "BertProcessing", "RobertaProcessing":
		var p struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", typ, err)
		}
		var sep, cls int
		if err := json.Unmarshal(p.Sep[1], &sep); err != nil {
			return nil, fmt.Errorf("%s: sep: %w", typ, err)
		}
		if err := json.Unmarshal(p.Cls[1], &cls); err != nil {
			return nil, fmt.Errorf("%s: cls: %w", typ, err)
		}
		return template{[]int{cls}, []int{sep}}, nil
	case "Sequence":
		var p struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("Sequence: %w", err)
		}
		seq, err := parseSequence(p.Processors, parsePostProcessor)
		if err != nil || len(seq) == 0 {
			return nil, err
		}
		return postSequence(seq), nil
	}
	return nil, fmt.Errorf("post-processor type %q is not supported (supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)", typ)
}

func parseTemplate(raw json.RawMessage) (postProcessor, error) {
	var p struct {
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("TemplateProcessing: %w", err)
	}
	var tp template
	seen := false
	for i, item := range p.Single {
		switch {
		case item.Sequence != nil:
			if seen {
				return nil, fmt.Errorf("TemplateProcessing: single[%d]: the sequence appears twice", i)
			}
			seen = true
		case item.SpecialToken != nil:
			st, ok := p.SpecialTokens[item.SpecialToken.ID]
			if !ok {
				return nil, fmt.Errorf("TemplateProcessing: single[%d]: %q is not in special_tokens", i, item.SpecialToken.ID)
			}
			if seen {
				tp.after = append(tp.after, st.IDs...)
			} else {
				tp.before = append(tp.before, st.IDs...)
			}
		default:
			return nil, fmt.Errorf("TemplateProcessing: single[%d]: want SpecialToken or Sequence", i)
		}
	}
	if !seen {
		return nil, fmt.Errorf("TemplateProcessing: single has no Sequence")
	}
	return tp, nil
}
