package index

import "testing"

func BenchmarkDecode(b *testing.B) {
	docs := goldenDocs(b)
	d := docs[0]
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, err := decode(d); err != nil {
			b.Fatal(err)
		}
	}
}
