module github.com/mlx-moe/mlx-moe

go 1.26
