package main

import (
	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/chat"
)

// chatPromptIDs wraps text as one user message in the model's chat template
// and tokenizes it.
func chatPromptIDs(m *mlxmoe.Model, text string) ([]int32, error) {
	_, ids, err := m.ChatPrompt([]chat.Message{{Role: "user", Content: text}}, nil, nil)
	return ids, err
}
