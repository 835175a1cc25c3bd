package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	mlxmoe "github.com/mlx-moe/mlx-moe"
)

var profileCmd = &command{name: "profile", summary: "record how often each expert is routed to, for filling and pinning the pager"}

func init() {
	profileCmd.run = runProfile
	register(profileCmd)
}

// defaultProfilePrompts are used without --prompts: short code and prose.
var defaultProfilePrompts = []string{
	"def quicksort(arr):\n    if len(arr) <= 1:\n        return arr\n",
	"import os\nimport sys\n\ndef main(argv):\n    parser = argparse.ArgumentParser()\n",
	"class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
	"The quick brown fox jumps over the lazy dog. Explain what this sentence is used for.",
	"func main() {\n\thttp.HandleFunc(\"/\", handler)\n\tlog.Fatal(http.ListenAndServe(\":8080\", nil))\n}\n",
}

func runProfile(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(profileCmd, `profile [--model DIR] [--prompts FILE] --out profiles/NAME.json

Runs prompts with every expert resident and records, per MoE layer, how often
the router chose each expert (schema: profiles/README.md). FILE holds one
prompt per line, or a JSON array of strings or of token-id arrays. A profile
named after the model in profiles/ is found automatically by generate and serve.`, stderr)
	var mf modelFlags
	mf.register(fs, " (default: the embedded model)")
	promptsFile := fs.String("prompts", "", "prompts to run (default: a few built-in code and prose prompts)")
	out := fs.String("out", "", "where to write the profile JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	mf.experts.Policy = "resident"
	m, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	prompts, source, err := profilePrompts(m, *promptsFile)
	if err != nil {
		return err
	}
	prof, err := m.Profile(prompts, source)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := prof.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "profile of %d tokens written to %s\n", prof.Tokens, *out)
	return nil
}

func profilePrompts(m *mlxmoe.Model, path string) ([][]int32, string, error) {
	var texts []string
	if path == "" {
		texts = defaultProfilePrompts
		path = "built-in prompts"
	} else {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		var ids [][]int32
		switch {
		case json.Unmarshal(data, &ids) == nil:
			return ids, path, nil
		case json.Unmarshal(data, &texts) == nil:
		default:
			sc := bufio.NewScanner(strings.NewReader(string(data)))
			sc.Buffer(make([]byte, 1<<20), 1<<26)
			for sc.Scan() {
				if line := strings.TrimSpace(sc.Text()); line != "" {
					texts = append(texts, strings.ReplaceAll(line, `\n`, "\n"))
				}
			}
		}
	}
	var out [][]int32
	for _, t := range texts {
		out = append(out, m.Encode(t))
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s: no prompts", path)
	}
	return out, path, nil
}
