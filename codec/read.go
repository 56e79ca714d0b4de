package codec

import "io"

// ReadUpTo appends up to limit bytes of r to *buf, and one more when r is
// longer. It reports whether r ended within the limit; an error other than
// io.EOF is returned as is.
func ReadUpTo(r io.Reader, buf *[]byte, limit int64) (complete bool, err error) {
	b := *buf
	for {
		if int64(len(b)) > limit {
			*buf = b
			return false, nil
		}
		if len(b) == cap(b) {
			want := int64(cap(b)) * 2
			if want > limit+1 {
				want = limit + 1
			}
			if want < 512 {
				want = 512
			}
			nb := make([]byte, len(b), want)
			copy(nb, b)
			b = nb
		}
		n, rerr := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if rerr == io.EOF {
			*buf = b
			return int64(len(b)) <= limit, nil
		}
		if rerr != nil {
			*buf = b
			return false, rerr
		}
	}
}
