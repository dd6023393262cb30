package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// firstBuffer is the size of the buffer a body gets when its first byte
// arrives (from a pool: most deliveries fit); later buffers at most double,
// so a client that announces a large Content-Length and sends little holds
// little.
const firstBuffer = 16 << 10

// readBody reads the whole body, at most MaxBodyBytes (errTooLarge above).
// Nothing is allocated before the body's first byte arrives. The buffer then
// grows as bytes arrive: it starts as a pooled buffer of firstBuffer bytes
// and doubles each time it is full, except that once doubling would reach
// half the Content-Length it grows to exactly the Content-Length. So a
// buffer never exceeds four times the bytes received (plus firstBuffer), a
// body is copied at most once in total, and a known length ends in one
// buffer of exactly its size. Every growth first reserves its bytes from
// the memory budget (errBusy if it cannot within BudgetWait). The caller
// passes reserved and pooled (the pooled buffer still holding the body, or
// nil) to done once the delivery is answered.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, reserved int64, pooled *[firstBuffer]byte, err error) {
	limit := h.opts.MaxBodyBytes
	cl := r.ContentLength
	if cl > limit {
		return nil, 0, nil, errTooLarge
	}
	if cl == 0 {
		return nil, 0, nil, nil
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
				return nil, 0, nil, nil // an empty chunked body
			}
			return nil, 0, nil, readErr(err)
		}
	}

	reserve := func(n int64) error {
		if !h.budget.tryAcquire(n) {
			ctx, cancel := context.WithTimeout(r.Context(), h.opts.BudgetWait)
			err := h.budget.acquire(ctx, n)
			cancel()
			if err != nil {
				return errBusy
			}
		}
		reserved += n
		return nil
	}
	if err := reserve(firstBuffer); err != nil {
		return nil, reserved, nil, err
	}
	pooled, _ = h.bufs.Get().(*[firstBuffer]byte)
	if pooled == nil {
		pooled = new([firstBuffer]byte)
	}
	buf := pooled[:1:min(bound, firstBuffer)]
	buf[0] = first[0]
	for {
		if int64(len(buf)) == cl {
			return buf, reserved, pooled, nil
		}
		if len(buf) == cap(buf) {
			next := min(2*int64(cap(buf)), bound)
			if cl > 0 && 2*next >= cl {
				next = cl
			}
			// The pooled buffer is charged firstBuffer whatever its cap.
			if err := reserve(next - max(int64(cap(buf)), firstBuffer)); err != nil {
				return nil, reserved, pooled, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
			if pooled != nil {
				h.bufs.Put(pooled)
				pooled = nil
			}
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if cl > 0 && int64(len(buf)) != cl {
				return nil, reserved, pooled, errBodyRead
			}
			return buf, reserved, pooled, nil
		}
		if err != nil {
			return nil, reserved, pooled, readErr(err)
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
