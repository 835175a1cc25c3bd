package mlxmoe

import (
	"context"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestSessionCloseFreesCaches: every tensor a session's caches made (the
// live cache and, for the hybrid Qwen3-Next fixture, its snapshots) is
// freed by Close, counted through a counting executor.
func TestSessionCloseFreesCaches(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			m, err := Load(fixture.Dir(t, "fixtures/"+name), Options{ContextLength: 256, Experts: ExpertOptions{Policy: "resident"}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ce := graphtest.NewCounting(m.exec)
			m.exec, m.runner = ce, model.NewRunner(m.Model, ce)
			ce.Reset()
			s := m.NewSession()
			opts := GenerateOptions{MaxTokens: 4, IgnoreEOS: true}
			for _, p := range [][]int32{{11, 12, 13}, {11, 12, 13, 14, 15}, {40, 41}} {
				if _, err := s.Stream(context.Background(), p, opts, nil); err != nil {
					t.Fatal(err)
				}
			}
			made := ce.Ops["NewTensor"]
			s.Close()
			if made == 0 || ce.Ops["Free"] != made {
				t.Fatalf("the session made %d tensors and Close freed %d", made, ce.Ops["Free"])
			}
			t.Logf("%d cache tensors made and freed", made)
		})
	}
}
