package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrNotCached means a model is not (completely) in the local cache.
var ErrNotCached = errors.New("not in the Hugging Face cache")

// Cache is a Hugging Face hub cache directory.
type Cache struct {
	Dir string
}

// sha1Hex matches a full commit hash (which names a snapshot directly) or
// git blob id.
var sha1Hex = regexp.MustCompile(`^[0-9a-f]{40}$`)

// RepoDir is the folder of a model repository: models--ORG--NAME.
func (c Cache) RepoDir(repo string) string {
	return filepath.Join(c.Dir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

func (c Cache) lockDir(repo string) string {
	return filepath.Join(c.Dir, ".locks", "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// Commit is the commit id.Revision points to in the cache: the revision
// itself when it is a commit hash, else what refs/<revision> holds.
func (c Cache) Commit(id ID) (string, error) {
	if sha1Hex.MatchString(id.Revision) {
		return id.Revision, nil
	}
	data, err := os.ReadFile(filepath.Join(c.RepoDir(id.Repo), "refs", filepath.FromSlash(id.Revision)))
	if err != nil {
		return "", fmt.Errorf("%s: %w (no refs/%s in %s)", id, ErrNotCached, id.Revision, c.RepoDir(id.Repo))
	}
	return strings.TrimSpace(string(data)), nil
}

// Snapshot returns the snapshot directory of id when every file the engine
// needs to load it is there: config.json and the safetensors weights (all
// the shards model.safetensors.index.json names). Otherwise the error wraps
// ErrNotCached.
func (c Cache) Snapshot(id ID) (string, error) {
	commit, err := c.Commit(id)
	if err != nil {
		// Fetched by commit (no refs/main): the newest complete snapshot.
		if dir := c.preferredSnapshot(id.Repo); id.Revision == DefaultRevision && dir != "" && len(missingFiles(dir)) == 0 {
			return dir, nil
		}
		return "", err
	}
	dir := filepath.Join(c.RepoDir(id.Repo), "snapshots", commit)
	if missing := missingFiles(dir); len(missing) > 0 {
		return "", fmt.Errorf("%s: %w (%s lacks %s)", id, ErrNotCached, dir, strings.Join(missing, ", "))
	}
	return dir, nil
}

// missingFiles lists what a model directory lacks for the engine to load it.
func missingFiles(dir string) []string {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return []string{"config.json"}
	}
	data, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		if m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors")); len(m) == 0 {
			return []string{"*.safetensors"}
		}
		return nil
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return []string{"a readable model.safetensors.index.json"}
	}
	var missing []string
	seen := map[string]bool{}
	for _, f := range index.WeightMap {
		if seen[f] {
			continue
		}
		seen[f] = true
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	return missing
}

// CachedModel is a model repository found in the cache.
type CachedModel struct {
	Repo     string    // ORG/NAME
	Dir      string    // the snapshot refs/main points to, else the newest ("" when there is none)
	Size     int64     // bytes of all its blobs, partial downloads included
	Complete bool      // Dir holds what the engine needs to load it
	Modified time.Time // when Dir was last written
}

// List returns the model repositories in the cache, sorted by name.
func (c Cache) List() ([]CachedModel, error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Hugging Face cache: %w", err)
	}
	var out []CachedModel
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "models--")
		if !ok || !e.IsDir() {
			continue
		}
		m := CachedModel{Repo: strings.Replace(rest, "--", "/", 1)}
		repoDir := filepath.Join(c.Dir, e.Name())
		blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
		for _, b := range blobs {
			if info, err := b.Info(); err == nil && info.Mode().IsRegular() {
				m.Size += info.Size()
			}
		}
		m.Dir = c.preferredSnapshot(m.Repo)
		if m.Dir != "" {
			m.Complete = len(missingFiles(m.Dir)) == 0
			if info, err := os.Stat(m.Dir); err == nil {
				m.Modified = info.ModTime()
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repo < out[j].Repo })
	return out, nil
}

// preferredSnapshot is the snapshot refs/main names, else the most recently
// written one ("" when there is none).
func (c Cache) preferredSnapshot(repo string) string {
	if commit, err := c.Commit(ID{Repo: repo, Revision: DefaultRevision}); err == nil {
		dir := filepath.Join(c.RepoDir(repo), "snapshots", commit)
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
	snaps, _ := filepath.Glob(filepath.Join(c.RepoDir(repo), "snapshots", "*"))
	var best string
	var bestTime time.Time
	for _, s := range snaps {
		if info, err := os.Stat(s); err == nil && info.IsDir() && info.ModTime().After(bestTime) {
			best, bestTime = s, info.ModTime()
		}
	}
	return best
}

// Remove deletes a model repository from the cache: its blobs, snapshots,
// refs and locks. It returns the bytes freed.
func (c Cache) Remove(repo string) (int64, error) {
	if _, err := ParseID(repo); err != nil || strings.Contains(repo, "@") {
		return 0, fmt.Errorf("model id %q: expected ORG/NAME", repo)
	}
	dir := c.RepoDir(repo)
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("%s: %w (no %s)", repo, ErrNotCached, dir)
	}
	var freed int64
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				freed += info.Size()
			}
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("removing %s: %w", dir, err)
	}
	os.RemoveAll(c.lockDir(repo))
	return freed, nil
}

// Local resolves a model name to a directory without any network access: an
// existing path as it is, a hub id to its complete cached snapshot. The
// error wraps ErrNotCached when the id is not (completely) cached.
func (c Cache) Local(name string) (string, error) {
	if !IsID(name) {
		return name, nil
	}
	id, _ := ParseID(name)
	return c.Snapshot(id)
}

// writeRef records that revision points to commit (refs/<revision>),
// atomically so a concurrent reader never sees half a hash.
func (c Cache) writeRef(id ID, commit string) error {
	if id.Revision == commit {
		return nil
	}
	path := filepath.Join(c.RepoDir(id.Repo), "refs", filepath.FromSlash(id.Revision))
	if old, err := os.ReadFile(path); err == nil && string(old) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(commit)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// link makes snapshots/<commit>/<file> a relative symlink to blobs/<etag>,
// as huggingface_hub does, so the cache can be moved as a whole.
func (c Cache) link(repo, commit, file, etag string) error {
	pointer := filepath.Join(c.RepoDir(repo), "snapshots", commit, filepath.FromSlash(file))
	blob := filepath.Join(c.RepoDir(repo), "blobs", etag)
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return err
	}
	if target, err := os.Readlink(pointer); err == nil && target == rel {
		return nil
	}
	os.Remove(pointer)
	if err := os.Symlink(rel, pointer); err != nil {
		if target, rerr := os.Readlink(pointer); rerr == nil && target == rel {
			return nil // another process linked it meanwhile
		}
		return fmt.Errorf("linking %s: %w", pointer, err)
	}
	return nil
}
