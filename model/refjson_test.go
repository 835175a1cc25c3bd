package model_test

import (
	"slices"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// The part of reference.json every float64 transcription's fixture
// generator writes alike (DESIGN.md "Reference data"): per prompt the last
// logits (every position's for the first prompt), the embedding and each
// layer's output at the last position, each router's sorted top-k per
// position and the top-2 gap; and 24 greedy tokens with their gaps. The
// generators add their own metadata ("source", "fixture", "seed", ...).

// refTrace is what one forward pass of a transcription over a sequence.
type refTrace struct {
	logits    [][]float64 // per position
	embedLast []float64
	layerLast [][]float64 // per layer, at the last position
	// routes: per router (transformers' module name), per position, the
	// chosen experts (sorted here).
	routes map[string][][]int32
}

// refPrompt is one prompt's entry of reference.json.
type refPrompt struct {
	Text            string               `json:"text"`
	IDs             []int32              `json:"ids"`
	LastLogits      []float32            `json:"last_logits"`
	AllLogits       [][]float32          `json:"all_logits,omitempty"`
	EmbeddingLast   []float32            `json:"embedding_last"`
	LayerOutputLast [][]float32          `json:"layer_output_last"`
	RouterTopK      map[string][][]int32 `json:"router_topk_sorted"`
	LastTop2Gap     float64              `json:"last_top2_gap"`
}

// refPrompts runs forward over each prompt; an error from forward (a
// seed whose routes are too close to call, say) stops it.
func refPrompts(prompts []fixture.Prompt, forward func(ids []int32) (*refTrace, error)) ([]refPrompt, error) {
	var out []refPrompt
	for i, p := range prompts {
		pass, err := forward(p.IDs)
		if err != nil {
			return nil, err
		}
		last := pass.logits[len(pass.logits)-1]
		_, gap := refTop2(last)
		e := refPrompt{Text: p.Text, IDs: p.IDs, LastLogits: refF32(last), EmbeddingLast: refF32(pass.embedLast),
			RouterTopK: map[string][][]int32{}, LastTop2Gap: gap}
		if i == 0 {
			for _, row := range pass.logits {
				e.AllLogits = append(e.AllLogits, refF32(row))
			}
		}
		for _, row := range pass.layerLast {
			e.LayerOutputLast = append(e.LayerOutputLast, refF32(row))
		}
		for key, perPos := range pass.routes {
			for _, ids := range perPos {
				e.RouterTopK[key] = append(e.RouterTopK[key], slices.Sorted(slices.Values(ids)))
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// refGreedy is reference.json's "greedy": 24 tokens after prompt, each
// step a full forward pass of the sequence so far (transformers' generate
// recomputes nothing differently), with the top-2 gap at each step.
// lastLogits returns the last position's logits; its error stops the run.
func refGreedy(prompt []int32, lastLogits func(ids []int32) ([]float64, error)) (map[string]any, error) {
	seq := slices.Clone(prompt)
	var newIDs []int32
	var gaps []float64
	for range 24 {
		last, err := lastLogits(seq)
		if err != nil {
			return nil, err
		}
		id, gap := refTop2(last)
		newIDs, gaps = append(newIDs, id), append(gaps, gap)
		seq = append(seq, id)
	}
	return map[string]any{"prompt_ids": prompt, "new_ids": newIDs, "top2_gaps": gaps}, nil
}

// refTop2 is the argmax of logits (the first, on a tie) and its margin
// over the runner-up.
func refTop2(v []float64) (int32, float64) {
	a, b := 0, -1
	for i := 1; i < len(v); i++ {
		switch {
		case v[i] > v[a]:
			a, b = i, a
		case b < 0 || v[i] > v[b]:
			b = i
		}
	}
	return int32(a), v[a] - v[b]
}

// refF32 is v in float32, as reference.json keeps values.
func refF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
