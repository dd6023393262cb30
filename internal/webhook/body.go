package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// firstBuffer is the largest buffer a body gets when its first byte
// arrives; later buffers at most double, so a client that announces a large
// Content-Length and sends little holds little.
const firstBuffer = 16 << 10

// readBody reads the whole body, at most MaxBodyBytes (errTooLarge above).
// Nothing is allocated before the body's first byte arrives. The buffer then
// grows as bytes arrive: it starts at firstBuffer (or the Content-Length if
// smaller) and doubles each time it is full, except that once doubling
// would reach half the Content-Length it grows to exactly the
// Content-Length. So a buffer never exceeds four times the bytes received
// (plus firstBuffer), a body is copied at most once in total, and a known
// length ends in one buffer of exactly its size. Every growth first
// reserves its bytes from the memory budget (errBusy if it cannot within
// BudgetWait). reserved is what the caller releases once the delivery is
// answered.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, reserved int64, err error) {
	limit := h.opts.MaxBodyBytes
	cl := r.ContentLength
	if cl > limit {
		return nil, 0, errTooLarge
	}
	if cl == 0 {
		return nil, 0, nil
	}
	var rd io.Reader = r.Body // a known length is already enforced by net/http
	if cl < 0 {
		rd = http.MaxBytesReader(w, r.Body, limit)
	}
	bound := limitCap(cl, limit)

	// Wait for the first byte without a buffer of the body's size.
	var first [1]byte
	for {
		n, err := rd.Read(first[:])
		if n == 1 {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) && cl < 0 {
				return nil, 0, nil // an empty chunked body
			}
			return nil, 0, readErr(err)
		}
	}

	var buf []byte
	grow := func(to int64) error {
		n := to - int64(cap(buf))
		if !h.budget.tryAcquire(n) {
			ctx, cancel := context.WithTimeout(r.Context(), h.opts.BudgetWait)
			err := h.budget.acquire(ctx, n)
			cancel()
			if err != nil {
				return errBusy
			}
		}
		reserved += n
		nb := make([]byte, len(buf), to)
		copy(nb, buf)
		buf = nb
		return nil
	}
	if err := grow(min(bound, firstBuffer)); err != nil {
		return nil, reserved, err
	}
	buf = append(buf, first[0])
	for {
		if int64(len(buf)) == cl {
			return buf, reserved, nil
		}
		if len(buf) == cap(buf) {
			next := min(2*int64(cap(buf)), bound)
			if cl > 0 && 2*next >= cl {
				next = cl
			}
			if err := grow(next); err != nil {
				return nil, reserved, err
			}
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if cl > 0 && int64(len(buf)) != cl {
				return nil, reserved, errBodyRead
			}
			return buf, reserved, nil
		}
		if err != nil {
			return nil, reserved, readErr(err)
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
