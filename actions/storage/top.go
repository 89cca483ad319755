package storage

import "slices"

// Top keeps the n greatest items added to it by cmp (a bounded min-heap), so
// a listing of any size is ranked in memory proportional to n, not to the
// listing. The zero value is not usable: make one with NewTop.
type Top[T any] struct {
	n     int
	cmp   func(a, b T) int // > 0 when a ranks above b
	heap  []T              // min-heap: heap[0] ranks lowest
	added int
	peak  int
}

// NewTop returns a Top keeping the n (at least 1) highest-ranked items.
func NewTop[T any](n int, cmp func(a, b T) int) *Top[T] {
	return &Top[T]{n: max(n, 1), cmp: cmp}
}

// Add offers x.
func (t *Top[T]) Add(x T) {
	t.added++
	if len(t.heap) < t.n {
		t.heap = append(t.heap, x)
		t.up(len(t.heap) - 1)
		t.peak = max(t.peak, len(t.heap))
		return
	}
	if t.cmp(x, t.heap[0]) <= 0 {
		return
	}
	t.heap[0] = x
	t.down(0)
}

// Added is how many items were offered.
func (t *Top[T]) Added() int { return t.added }

// Peak is the most items held at once (never more than n).
func (t *Top[T]) Peak() int { return t.peak }

// Sorted returns the kept items, highest first.
func (t *Top[T]) Sorted() []T {
	out := slices.Clone(t.heap)
	slices.SortStableFunc(out, func(a, b T) int { return t.cmp(b, a) })
	return out
}

func (t *Top[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.cmp(t.heap[i], t.heap[p]) >= 0 {
			return
		}
		t.heap[i], t.heap[p] = t.heap[p], t.heap[i]
		i = p
	}
}

func (t *Top[T]) down(i int) {
	for {
		l, small := 2*i+1, i
		if l < len(t.heap) && t.cmp(t.heap[l], t.heap[small]) < 0 {
			small = l
		}
		if r := l + 1; r < len(t.heap) && t.cmp(t.heap[r], t.heap[small]) < 0 {
			small = r
		}
		if small == i {
			return
		}
		t.heap[i], t.heap[small] = t.heap[small], t.heap[i]
		i = small
	}
}

// NewerFirst ranks objects by LastModified, then by key (the greater key
// ranks higher on a tie, so same-second backups named by time still come
// newest first): the order List returns.
func NewerFirst(a, b Object) int {
	if c := a.LastModified.Compare(b.LastModified); c != 0 {
		return c
	}
	switch {
	case a.Key > b.Key:
		return 1
	case a.Key < b.Key:
		return -1
	}
	return 0
}
