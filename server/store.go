package server

import (
	"container/list"
	"sync"
)

// respStore keeps stored responses' conversations for previous_response_id,
// bounded by an estimate of their memory; the least recently used go first.
type respStore struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // front: most recently used *storedResp
	byID  map[string]*list.Element
}

type storedResp struct {
	id    string
	msgs  []Message
	bytes int64
}

func newRespStore(max int64) *respStore {
	return &respStore{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

func messagesBytes(msgs []Message) int64 {
	n := int64(0)
	for _, m := range msgs {
		n += int64(len(m.Content)+len(m.ReasoningContent)+len(m.ToolCallID)+len(m.Name)) + 64
		for _, c := range m.ToolCalls {
			n += int64(len(c.ID)+len(c.Name)+len(c.Arguments)) + 48
		}
	}
	return n
}

// put stores msgs under id. A conversation larger than the whole bound is
// not stored.
func (s *respStore) put(id string, msgs []Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := messagesBytes(msgs)
	if n > s.max {
		return
	}
	s.size += n
	s.byID[id] = s.order.PushFront(&storedResp{id: id, msgs: msgs, bytes: n})
	for s.size > s.max {
		old := s.order.Remove(s.order.Back()).(*storedResp)
		delete(s.byID, old.id)
		s.size -= old.bytes
	}
}

func (s *respStore) get(id string) ([]Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	s.order.MoveToFront(e)
	return e.Value.(*storedResp).msgs, true
}
