package processor

import "sync"

// indexEntry is what this instance last wrote or read of an entry of the
// correlation index.
type indexEntry struct {
	rev     uint64
	members []corrMember // not modified once cached
}

// indexCache is a bounded cache of index entries by key. It is only a
// hint: a stale entry costs one failed compare-and-set.
type indexCache struct {
	mu sync.Mutex
	m  map[string]indexEntry
}

// indexCacheSize bounds the entries cached (a few MB at most).
const indexCacheSize = 16384

func (c *indexCache) get(key string) (indexEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

func (c *indexCache) put(key string, e indexEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]indexEntry)
	}
	if len(c.m) >= indexCacheSize {
		for k := range c.m { // map order is random: a cheap random eviction
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

func (c *indexCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
