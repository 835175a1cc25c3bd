package main

import (
	"fmt"
	"io"

	mlxmoe "github.com/mlx-moe/mlx-moe"
)

// renderUserPrompt wraps text as one user message in the model's chat
// template.
func renderUserPrompt(m *mlxmoe.Model, text string, stderr io.Writer) (string, error) {
	return "", fmt.Errorf("--chat: chat templates are not wired in yet")
}
