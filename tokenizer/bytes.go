package tokenizer

// TokenBytes returns the bytes token id writes into generated text (for a
// byte-level model possibly part of a UTF-8 character, which Decode would
// show as U+FFFD), or nil for an unknown id.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.idToTok) || t.idToTok[id] == "" {
		return nil
	}
	tok := t.idToTok[id]
	if _, ok := t.dec.(byteLevelDecoder); ok {
		out := make([]byte, 0, len(tok))
		for _, r := range tok {
			b, ok := charToByte[r]
			if !ok {
				return []byte(tok)
			}
			out = append(out, b)
		}
		return out
	}
	return []byte(t.Decode([]int{id}, false))
}
