package experts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WarmPath returns the file that holds the warm-start state of a model:
// <cache>/mlx-moe/<model name>/resident.json, where cache is dir if given,
// else $XDG_CACHE_HOME, else ~/.cache.
func WarmPath(dir, model string) (string, error) {
	if dir == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			dir = x
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("experts: no cache directory for the warm start: %w", err)
			}
			dir = filepath.Join(home, ".cache")
		}
	}
	return filepath.Join(dir, "mlx-moe", ModelName(model), "resident.json"), nil
}

// warmState is the resident set saved for the next start.
type warmState struct {
	Model    string      `json:"model"`
	Saved    time.Time   `json:"saved"`
	Capacity int         `json:"capacity"`
	Files    []fileStamp `json:"files"`
	Layers   []warmLayer `json:"layers"`
}

type fileStamp struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

type warmLayer struct {
	Layer   int     `json:"layer"`
	Experts []int32 `json:"experts"` // most valuable first
}

func (p *Pager) stamps() []fileStamp {
	var s []fileStamp
	for _, n := range p.fileNames() {
		f := p.files[n]
		s = append(s, fileStamp{Name: n, Size: f.size, ModTime: f.mtime.UnixNano()})
	}
	return s
}

// SaveWarm records the resident experts of every layer at path (see
// WarmPath), with the sizes and modification times of the model files and
// the capacity, so that LoadWarm can tell whether they still apply.
func (p *Pager) SaveWarm(path, model string) error {
	st := warmState{Model: ModelName(model), Saved: time.Now().UTC(), Capacity: p.cfg.Capacity, Files: p.stamps()}
	for l := range p.layers {
		if p.HasLayer(l) {
			st.Layers = append(st.Layers, warmLayer{Layer: l, Experts: p.Resident(l)})
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("experts: saving warm start: %w", err)
	}
	return nil
}

// LoadWarm fills the slots with the resident set saved at path if it was
// saved for the same model files (size and modification time) and the same
// capacity. It returns the number of experts loaded, or 0 and the reason the
// file was ignored; err is for failures to read experts or a corrupt file.
//
// It first removes temporary files that an interrupted save left next to
// path (see removeStaleTemps).
func (p *Pager) LoadWarm(path string) (loaded int, ignored string, err error) {
	removeStaleTemps(path, time.Now())
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "no warm-start file " + path, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("experts: warm start: %w", err)
	}
	var st warmState
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Sprintf("warm-start file %s is not valid: %v", path, err), nil
	}
	if st.Capacity != p.cfg.Capacity {
		return 0, fmt.Sprintf("warm start %s was saved with capacity %d, now %d", path, st.Capacity, p.cfg.Capacity), nil
	}
	now := p.stamps()
	if len(now) != len(st.Files) {
		return 0, fmt.Sprintf("warm start %s was saved for %d model files, now %d", path, len(st.Files), len(now)), nil
	}
	for i, f := range now {
		if st.Files[i] != f {
			return 0, fmt.Sprintf("warm start %s: model file %s changed since it was saved (size %d, mtime %s; saved %s: size %d, mtime %s)", path,
				f.Name, f.Size, time.Unix(0, f.ModTime).UTC().Format(time.RFC3339), st.Files[i].Name, st.Files[i].Size, time.Unix(0, st.Files[i].ModTime).UTC().Format(time.RFC3339)), nil
		}
	}
	for _, wl := range st.Layers {
		if !p.HasLayer(wl.Layer) {
			return 0, fmt.Sprintf("warm start %s names layer %d, which has no experts", path, wl.Layer), nil
		}
		for _, e := range wl.Experts {
			if e < 0 || int(e) >= len(p.layers[wl.Layer].table) {
				return 0, fmt.Sprintf("warm start %s: layer %d: expert %d out of range", path, wl.Layer, e), nil
			}
		}
	}
	for _, wl := range st.Layers {
		n, err := p.Fill(wl.Layer, wl.Experts)
		loaded += n
		if err != nil {
			return loaded, "", err
		}
	}
	return loaded, "", nil
}

// staleTempAge is how old a temporary file from a save must be before it
// counts as left behind: a save takes milliseconds, so a file this old
// belongs to no running process (one still writing keeps its file).
const staleTempAge = 10 * time.Minute

// removeStaleTemps deletes the ".tmp-<name>*" files that writeFileAtomic
// leaves next to path when the process is killed during a save.
func removeStaleTemps(path string, now time.Time) {
	dir, prefix := filepath.Dir(path), ".tmp-"+filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > staleTempAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
