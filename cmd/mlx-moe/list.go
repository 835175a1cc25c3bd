package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/hub"
	"github.com/mlx-moe/mlx-moe/model"
)

var listCmd = &command{
	name:    "list",
	summary: "list the models in the Hugging Face cache: size, family, quantization, whether the engine runs them",
}

func init() {
	listCmd.run = runList
	register(listCmd)
}

// listedModel is one row of `mlx-moe list`.
type listedModel struct {
	Name      string `json:"name"`
	Size      int64  `json:"size_bytes"`
	Family    string `json:"model_type,omitempty"`
	Quant     string `json:"quantization,omitempty"`
	Supported bool   `json:"supported"`
	Status    string `json:"status"` // ready, incomplete (pull to finish), unsupported
	Dir       string `json:"dir,omitempty"`
}

func runList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(listCmd, `list [--json]

Lists the models in the Hugging Face cache ($HF_HUB_CACHE, default
~/.cache/huggingface/hub), whoever downloaded them (mlx-moe pull,
huggingface-cli, transformers, mlx-lm).`, stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q: list takes only flags", rest)
	}
	cache := hub.Cache{Dir: hub.CacheDir()}
	models, err := cache.List()
	if err != nil {
		return err
	}
	rows := make([]listedModel, 0, len(models))
	for _, m := range models {
		rows = append(rows, describeCached(m))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(stdout, "no models in %s; download one with `mlx-moe pull ORG/NAME`\n", cache.Dir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tFAMILY\tQUANTIZATION\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, experts.FormatBytes(r.Size), dash(r.Family), dash(r.Quant), r.Status)
	}
	return tw.Flush()
}

// describeCached reads a cached model's config.json for its family and
// quantization, and whether this engine runs it.
func describeCached(m hub.CachedModel) listedModel {
	r := listedModel{Name: m.Repo, Size: m.Size, Dir: m.Dir, Status: "incomplete (mlx-moe pull " + m.Repo + " finishes it)"}
	data, err := os.ReadFile(filepath.Join(m.Dir, "config.json"))
	if m.Dir == "" || err != nil {
		return r
	}
	if cfg, err := model.ParseConfig(data); err == nil {
		r.Family = cfg.ModelType
		if q := cfg.Quant.Default; q.Bits > 0 {
			r.Quant = fmt.Sprintf("%d-bit, group %d", q.Bits, q.GroupSize)
		}
	}
	if r.Quant == "" {
		var dt struct {
			Torch string `json:"torch_dtype"`
			DType string `json:"dtype"`
		}
		json.Unmarshal(data, &dt)
		r.Quant = dt.DType + dt.Torch
	}
	r.Supported = mlxmoe.CheckSupported(data) == nil
	switch {
	case !r.Supported:
		r.Status = "unsupported"
	case m.Complete:
		r.Status = "ready"
	}
	return r
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
