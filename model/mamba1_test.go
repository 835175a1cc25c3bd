package model_test

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestJambaConfigErrors checks that config options the engine does not
// implement, or sizes that do not match the weights, fail the load with
// an error naming the field or tensor.
func TestJambaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		want string
	}{
		{"activation", func(c map[string]any) { c["hidden_act"] = "gelu" }, `hidden_act "gelu" is not supported`},
		{"attention offset", func(c map[string]any) { c["attn_layer_offset"] = 4 }, "attn_layer_offset (4) must be in [0, attn_layer_period (4))"},
		{"expert period", func(c map[string]any) { c["expert_layer_period"] = 0 }, "expert_layer_offset (1) must be in [0, expert_layer_period (0))"},
		{"dt rank word", func(c map[string]any) { c["mamba_dt_rank"] = "big" }, `mamba_dt_rank "big"`},
		{"dt rank fraction", func(c map[string]any) { c["mamba_dt_rank"] = 2.5 }, "mamba_dt_rank 2.5 is not a whole number"},
		{"dt rank size", func(c map[string]any) { c["mamba_dt_rank"] = 8 }, "mamba.x_proj.weight has shape"},
		{"state size", func(c map[string]any) { c["mamba_d_state"] = 0 }, "mamba_d_state (0)"},
		{"projection bias", func(c map[string]any) { c["mamba_proj_bias"] = true }, "mamba.in_proj.bias is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/jamba-4bit")
			fixture.EditConfig(t, dir, tc.edit)
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
