package experts

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Profile records how often a model's routers chose each expert over some
// prompts. The pager fills its slots from it at start (most used first),
// pins the top --pin experts per layer, and the plan derives the expected
// hit rate from it. The JSON schema is documented in profiles/README.md.
type Profile struct {
	Model     string `json:"model"`
	ModelType string `json:"model_type,omitempty"`
	TopK      int    `json:"top_k,omitempty"`
	// Tokens is the number of tokens whose routes were counted.
	Tokens int64 `json:"tokens"`
	// Source says what was run: a prompts file, a data set.
	Source string         `json:"source,omitempty"`
	Layers []ProfileLayer `json:"layers"`
}

// ProfileLayer holds the counts of one MoE layer: Counts[e] is the number of
// times expert e was among a token's top-k.
type ProfileLayer struct {
	Layer  int     `json:"layer"`
	Counts []int64 `json:"counts"`
}

// LoadProfile reads and checks a profile file.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experts: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("experts: profile %s: %w", path, err)
	}
	if p.Model == "" {
		return nil, fmt.Errorf("experts: profile %s: no \"model\" name", path)
	}
	seen := map[int]bool{}
	for i, l := range p.Layers {
		if l.Layer < 0 || seen[l.Layer] {
			return nil, fmt.Errorf("experts: profile %s: layers[%d]: layer %d is negative or repeated", path, i, l.Layer)
		}
		seen[l.Layer] = true
		for e, c := range l.Counts {
			if c < 0 {
				return nil, fmt.Errorf("experts: profile %s: layer %d expert %d: count %d is negative", path, l.Layer, e, c)
			}
		}
	}
	return &p, nil
}

// Save writes the profile as indented JSON.
func (p *Profile) Save(path string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// Counts returns the counts of decoder layer l, or nil if the profile has none.
func (p *Profile) Counts(l int) []int64 {
	for _, pl := range p.Layers {
		if pl.Layer == l {
			return pl.Counts
		}
	}
	return nil
}

// Order returns the experts of layer l, most used first (ties by id).
func (p *Profile) Order(l int) []int32 {
	c := p.Counts(l)
	ids := make([]int32, len(c))
	for i := range ids {
		ids[i] = int32(i)
	}
	slices.SortStableFunc(ids, func(a, b int32) int { return cmp.Compare(c[b], c[a]) })
	return ids
}

// Check reports a profile that does not fit a model with experts[l] experts
// in decoder layer l (0 for a layer without experts).
func (p *Profile) Check(experts []int) error {
	for _, pl := range p.Layers {
		if pl.Layer >= len(experts) || experts[pl.Layer] == 0 {
			return fmt.Errorf("experts: profile of %s has counts for layer %d, which has no experts in this model", p.Model, pl.Layer)
		}
		if len(pl.Counts) != experts[pl.Layer] {
			return fmt.Errorf("experts: profile of %s: layer %d has %d counts, the model has %d experts", p.Model, pl.Layer, len(pl.Counts), experts[pl.Layer])
		}
	}
	return nil
}

// HitRate is the share of the profile's routes that go to the capacity most
// used experts of each layer, averaged over layers: the hit rate of a pager
// that keeps exactly those resident, if routing follows the profile.
func (p *Profile) HitRate(capacity int) float64 {
	var sum float64
	n := 0
	for _, pl := range p.Layers {
		c := slices.Clone(pl.Counts)
		slices.SortFunc(c, func(a, b int64) int { return cmp.Compare(b, a) })
		var top, all int64
		for i, v := range c {
			if i < capacity {
				top += v
			}
			all += v
		}
		if all > 0 {
			sum += float64(top) / float64(all)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// ModelName is the name profiles and warm starts use for a model given by a
// directory or a hub id: its last path element.
// A Hugging Face cache snapshot (.../models--ORG--NAME/snapshots/REV) is
// named NAME, not after its revision hash.
func ModelName(model string) string {
	clean := filepath.Clean(strings.TrimRight(model, "/"))
	parent := filepath.Dir(clean)
	if filepath.Base(parent) == "snapshots" {
		if repo := filepath.Base(filepath.Dir(parent)); strings.HasPrefix(repo, "models--") {
			parts := strings.Split(repo, "--")
			return parts[len(parts)-1]
		}
	}
	return filepath.Base(clean)
}

// FindProfile looks in dir for the profile of the named model: dir/<name>.json,
// else any *.json whose "model" is the name or ends in /name (case-insensitive).
// It returns "" with no error when there is none.
func FindProfile(dir, model string) (string, error) {
	name := ModelName(model)
	exact := filepath.Join(dir, name+".json")
	if _, err := os.Stat(exact); err == nil {
		return exact, nil
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", err
	}
	slices.Sort(paths)
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("experts: %w", err)
		}
		var head struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(b, &head) != nil {
			continue // not a profile
		}
		if strings.EqualFold(ModelName(head.Model), name) {
			return path, nil
		}
	}
	return "", nil
}

// Recorder counts router choices while a profile is recorded. The engine
// calls Record for every MoE layer of every token with the chosen ids; it is
// safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	counts [][]int64
}

// NewRecorder makes a recorder for a model with experts[l] experts in
// decoder layer l (0 for a layer without experts).
func NewRecorder(experts []int) *Recorder {
	r := &Recorder{counts: make([][]int64, len(experts))}
	for l, n := range experts {
		if n > 0 {
			r.counts[l] = make([]int64, n)
		}
	}
	return r
}

// Record counts the experts chosen in layer l (for one or more tokens).
func (r *Recorder) Record(l int, ids []int32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l < 0 || l >= len(r.counts) || r.counts[l] == nil {
		return fmt.Errorf("experts: recorder: layer %d has no experts", l)
	}
	c := r.counts[l]
	for _, e := range ids {
		if e < 0 || int(e) >= len(c) {
			return fmt.Errorf("experts: recorder: layer %d: expert id %d out of range [0, %d)", l, e, len(c))
		}
	}
	for _, e := range ids {
		c[e]++
	}
	return nil
}

// Profile returns the counts so far as a profile. Tokens is derived from the
// first MoE layer's counts and topK.
func (r *Recorder) Profile(model, modelType string, topK int, source string) *Profile {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &Profile{Model: model, ModelType: modelType, TopK: topK, Source: source}
	for l, c := range r.counts {
		if c == nil {
			continue
		}
		if len(p.Layers) == 0 && topK > 0 {
			var all int64
			for _, v := range c {
				all += v
			}
			p.Tokens = all / int64(topK)
		}
		p.Layers = append(p.Layers, ProfileLayer{Layer: l, Counts: slices.Clone(c)})
	}
	return p
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a file for the next start to trip on.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
