package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
)

// configJSON is the part of tokenizer_config.json this package reads.
type configJSON struct {
	BOSToken    json.RawMessage `json:"bos_token"`
	EOSToken    json.RawMessage `json:"eos_token"`
	AddBOSToken *bool           `json:"add_bos_token"`
	AddEOSToken *bool           `json:"add_eos_token"`
}

func (t *Tokenizer) readConfig(data []byte) error {
	var c configJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	var err error
	if t.bosToken, err = specialTokenContent(c.BOSToken); err != nil {
		return fmt.Errorf("bos_token: %w", err)
	}
	if t.eosToken, err = specialTokenContent(c.EOSToken); err != nil {
		return fmt.Errorf("eos_token: %w", err)
	}
	if t.eosToken != "" {
		id, ok := t.TokenID(t.eosToken)
		if !ok {
			return fmt.Errorf("eos_token %q is not in tokenizer.json", t.eosToken)
		}
		t.eosIDs = []int{id}
	}
	if t.bosToken != "" {
		if _, ok := t.TokenID(t.bosToken); !ok {
			return fmt.Errorf("bos_token %q is not in tokenizer.json", t.bosToken)
		}
	}
	t.addBOS, t.addEOS = c.AddBOSToken, c.AddEOSToken
	return nil
}

// specialTokenContent reads a special token that transformers writes either
// as a string, as null, or as an AddedToken object {"content": ...}.
func specialTokenContent(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want a string, null or an object with \"content\", got %s", raw)
	}
	return *obj.Content, nil
}

// addGenerationEOS adds generation_config.json's eos_token_id (a number or a
// list) to the EOS ids: models such as Qwen3 stop on several tokens.
func (t *Tokenizer) addGenerationEOS(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var g struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return err
	}
	if isNull(g.EOS) {
		return nil
	}
	var ids []int
	var one int
	if err := json.Unmarshal(g.EOS, &one); err == nil {
		ids = []int{one}
	} else if err := json.Unmarshal(g.EOS, &ids); err != nil {
		return fmt.Errorf("eos_token_id: want a number or a list of numbers, got %s", g.EOS)
	}
	for _, id := range ids {
		if id < 0 || id >= t.VocabSize() {
			return fmt.Errorf("eos_token_id %d is outside the vocabulary (size %d)", id, t.VocabSize())
		}
		if !slices.Contains(t.eosIDs, id) {
			t.eosIDs = append(t.eosIDs, id)
		}
	}
	return nil
}

// BOSToken is tokenizer_config.json's bos_token ("" when the model has none).
func (t *Tokenizer) BOSToken() string { return t.bosToken }

// EOSToken is tokenizer_config.json's eos_token ("" when the model has none).
func (t *Tokenizer) EOSToken() string { return t.eosToken }

// BOSTokenID returns the id of BOSToken, if the model has one.
func (t *Tokenizer) BOSTokenID() (int, bool) {
	if t.bosToken == "" {
		return 0, false
	}
	return t.TokenID(t.bosToken)
}

// EOSTokenIDs returns the ids that end generation: eos_token from
// tokenizer_config.json first, then any other eos_token_id listed in
// generation_config.json. The caller must not modify the slice.
func (t *Tokenizer) EOSTokenIDs() []int { return t.eosIDs }
