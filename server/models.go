package server

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// The models endpoints answer in OpenAI's shape, or in Anthropic's when the
// request carries an anthropic-version header (as Anthropic's SDKs and
// Claude Code send): {type: "model", id, display_name, created_at} items,
// and a list with has_more, first_id and last_id.

// root answers GET and HEAD / so that clients probing the base URL (Claude
// Code sends HEAD /) see a live server.
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.b.ModelID(),
		"endpoints": []string{"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages", "/v1/models"}})
}

func anthropicShape(r *http.Request) bool { return r.Header.Get("anthropic-version") != "" }

// modelIDs are the loaded model, then the other models in the local cache.
func (s *Server) modelIDs() []string {
	ids := []string{s.b.ModelID()}
	if s.cfg.CachedModels != nil {
		for _, m := range s.cfg.CachedModels() {
			if m != s.b.ModelID() {
				ids = append(ids, m)
			}
		}
	}
	return ids
}

func (s *Server) modelObject(id string, anthropicForm bool) map[string]any {
	if anthropicForm {
		return map[string]any{"type": "model", "id": id, "display_name": id,
			"created_at": time.Unix(s.created, 0).UTC().Format(time.RFC3339)}
	}
	return map[string]any{"id": id, "object": "model", "created": s.created, "owned_by": "mlx-moe",
		"loaded": id == s.b.ModelID()}
}

// models lists the loaded model and the models in the local cache.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	ids := s.modelIDs()
	ant := anthropicShape(r)
	data := []any{}
	for _, id := range ids {
		data = append(data, s.modelObject(id, ant))
	}
	if ant {
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false,
			"first_id": ids[0], "last_id": ids[len(ids)-1]})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// model describes one model. A cached model is described under its own
// id; any other name is the loaded model (answered under the loaded
// model's id), unless StrictModel is set.
func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "*")
	d := openAI
	if anthropicShape(r) {
		d = anthropic
	}
	for _, id := range s.modelIDs() {
		if id == name {
			writeJSON(w, http.StatusOK, s.modelObject(id, d == anthropic))
			return
		}
	}
	if e := s.checkModel(name); e != nil {
		d.writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject(s.b.ModelID(), d == anthropic))
}
