module github.com/mlx-moe/mlx-moe

go 1.26.0

require (
	github.com/dlclark/regexp2/v2 v2.13.0 // indirect
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/progrium/darwinkit v0.5.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
