package experts

import "testing"

func TestModelName(t *testing.T) {
	for in, want := range map[string]string{
		"/models/Qwen3-Coder-Next-4bit/":      "Qwen3-Coder-Next-4bit",
		"mlx-community/Qwen3-Coder-Next-4bit": "Qwen3-Coder-Next-4bit",
		"/root/.cache/huggingface/hub/models--mlx-community--Qwen3-Coder-Next-4bit/snapshots/0123abcd": "Qwen3-Coder-Next-4bit",
		"/data/snapshots/v1": "v1",
	} {
		if got := ModelName(in); got != want {
			t.Errorf("ModelName(%q) = %q, want %q", in, got, want)
		}
	}
}
