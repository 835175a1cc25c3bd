package server

// Log-probabilities in OpenAI's two shapes: chat's logprobs.content list of
// {token, logprob, bytes, top_logprobs}, and the legacy completions object
// of parallel arrays. Streams carry, on each chunk, the tokens generated
// since the previous chunk (text held back for a possible stop string
// comes with a later chunk).

// logprobsOptions checks chat's logprobs and top_logprobs fields.
func logprobsOptions(logprobs *bool, top *int) (bool, int, *apiError) {
	on := logprobs != nil && *logprobs
	if top == nil {
		return on, 0, nil
	}
	if *top < 0 || *top > 20 {
		return false, 0, invalid("top_logprobs", "top_logprobs must be between 0 and 20, got %d", *top)
	}
	if !on {
		return false, 0, invalid("top_logprobs", "top_logprobs needs logprobs set to true")
	}
	return on, *top, nil
}

// completionLogprobs checks completions' logprobs field (the number of
// alternatives, 0 to 5; absent: none).
func completionLogprobs(n *int) (bool, int, *apiError) {
	if n == nil {
		return false, 0, nil
	}
	if *n < 0 || *n > 5 {
		return false, 0, invalid("logprobs", "logprobs must be between 0 and 5, got %d", *n)
	}
	return true, *n, nil
}

func byteList(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

func chatLogprob(lp Logprob, top []Logprob) map[string]any {
	e := map[string]any{"token": lp.Token, "logprob": lp.Logprob, "bytes": byteList(lp.Token)}
	if top != nil {
		alts := make([]any, len(top))
		for i, a := range top {
			alts[i] = map[string]any{"token": a.Token, "logprob": a.Logprob, "bytes": byteList(a.Token)}
		}
		e["top_logprobs"] = alts
	}
	return e
}

// chatLogprobs is choices[].logprobs of a chat answer or chunk over toks
// (nil when the request asked for none).
func (j *job) chatLogprobs(toks []Token) any {
	if !j.logprobs {
		return nil
	}
	content := make([]any, len(toks))
	for i, t := range toks {
		top := t.Top
		if top == nil {
			top = []Logprob{}
		}
		content[i] = chatLogprob(*t.Logprob, top)
	}
	return map[string]any{"content": content, "refusal": nil}
}

// completionLogprobs is choices[].logprobs of a text completion over toks,
// offset being the text length before the first.
func (j *job) completionLogprobs(toks []Token, offset int) any {
	if !j.logprobs {
		return nil
	}
	out := map[string]any{"tokens": []string{}, "token_logprobs": []float64{}, "top_logprobs": []any{}, "text_offset": []int{}}
	for _, t := range toks {
		top := map[string]float64{}
		for _, a := range t.Top {
			top[a.Token] = a.Logprob
		}
		out["tokens"] = append(out["tokens"].([]string), t.Logprob.Token)
		out["token_logprobs"] = append(out["token_logprobs"].([]float64), t.Logprob.Logprob)
		out["top_logprobs"] = append(out["top_logprobs"].([]any), top)
		out["text_offset"] = append(out["text_offset"].([]int), offset)
		offset += len(t.Logprob.Token)
	}
	return out
}

// noteLogprob records a generated token that carries a log-probability.
func (j *job) noteLogprob(t Token) {
	if t.Logprob != nil {
		j.scored = append(j.scored, t)
	}
}

// takeLogprobs returns the tokens scored since the last call.
func (j *job) takeLogprobs() []Token {
	toks := j.scored[j.sent:]
	j.sent = len(j.scored)
	return toks
}
