package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// firstBuffer is the size of the buffer a body gets when its first byte
// arrives (from a pool: most deliveries fit); later buffers at most double,
// so a client that announces a large Content-Length and sends little holds
// little.
const firstBuffer = 16 << 10

// readBody reads the whole body, at most MaxBodyBytes: a Content-Length
// above it is answered errTooLarge before anything is read, whatever the
// Content-Encoding (the handler never decodes one: the signature covers
// the bytes as sent), and a body without one fails the same way once it
// passes the limit.
//
// Nothing is allocated, and no MaxInFlight slot taken, before the body's
// first byte arrives (errOverloaded if no slot is free then): a request
// waiting for its body holds its goroutine and net/http's buffers, for at
// most BodyTimeout. The buffer then grows as bytes arrive: it starts as a
// pooled buffer of firstBuffer bytes and doubles each time it is full,
// except that once doubling would reach half the Content-Length it grows
// to exactly the Content-Length. So a buffer never exceeds four times the
// bytes received (plus firstBuffer), a body is copied at most once in
// total, and a known length ends in one buffer of exactly its size. Every
// growth first reserves its bytes from the memory budget (errBusy if it
// cannot within BudgetWait). The caller passes hd to done once the
// delivery is answered, whatever the error.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, hd held, err error) {
	limit := h.opts.MaxBodyBytes
	cl := r.ContentLength
	if cl > limit {
		return nil, hd, errTooLarge
	}
	if cl == 0 {
		return nil, hd, nil
	}
	var rd io.Reader = r.Body // a known length is already enforced by net/http
	if cl < 0 {
		rd = http.MaxBytesReader(w, r.Body, limit)
	}
	bound := limitCap(cl, limit)

	// Not supported by a ResponseWriter that is not net/http's (tests):
	// then the listener's ReadTimeout alone applies.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.BodyTimeout))
	first, ok, err := h.firstByte(rd)
	if err != nil {
		return nil, hd, err
	}
	if !ok {
		if cl < 0 {
			return nil, hd, nil // an empty chunked body
		}
		return nil, hd, errBodyRead
	}
	if !h.inFlight.addBelow(int64(h.opts.MaxInFlight)) {
		return nil, hd, errOverloaded
	}
	hd.inFlight = true

	reserve := func(n int64) error {
		if !h.budget.tryAcquire(n) {
			ctx, cancel := context.WithTimeout(r.Context(), h.opts.BudgetWait)
			err := h.budget.acquire(ctx, n)
			cancel()
			if err != nil {
				return errBusy
			}
		}
		hd.reserved += n
		return nil
	}
	if err := reserve(firstBuffer); err != nil {
		return nil, hd, err
	}
	hd.pooled, _ = h.bufs.Get().(*[firstBuffer]byte)
	if hd.pooled == nil {
		hd.pooled = new([firstBuffer]byte)
	}
	buf := hd.pooled[:1:min(bound, firstBuffer)]
	buf[0] = first
	for {
		if int64(len(buf)) == cl {
			return buf, hd, nil
		}
		if len(buf) == cap(buf) {
			next := min(2*int64(cap(buf)), bound)
			if cl > 0 && 2*next >= cl {
				next = cl
			}
			// The pooled buffer is charged firstBuffer whatever its cap.
			if err := reserve(next - max(int64(cap(buf)), firstBuffer)); err != nil {
				return nil, hd, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
			if hd.pooled != nil {
				h.bufs.Put(hd.pooled)
				hd.pooled = nil
			}
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if cl > 0 && int64(len(buf)) != cl {
				return nil, hd, errBodyRead
			}
			return buf, hd, nil
		}
		if err != nil {
			return nil, hd, readErr(err)
		}
	}
}

// firstByte waits for the body's first byte with no buffer, counted in
// ghas_receiver_requests_waiting_for_body meanwhile; ok is false when the
// body ended first.
func (h *Handler) firstByte(rd io.Reader) (b byte, ok bool, err error) {
	h.waiting.add(1)
	defer h.waiting.add(-1)
	var first [1]byte
	for {
		n, err := rd.Read(first[:])
		if n == 1 {
			return first[0], true, nil
		}
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, readErr(err)
		}
	}
}

// readErr maps a body read error to its answer.
func readErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return errBodyRead
}

// limitCap is the largest buffer readBody needs: the Content-Length when
// known, else one byte more than the limit so that an oversized body shows.
func limitCap(cl, limit int64) int64 {
	if cl >= 0 {
		return cl
	}
	return limit + 1
}
