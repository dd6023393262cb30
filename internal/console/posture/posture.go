// Package posture owns the console's posture metrics on its /metrics:
// ghas_posture_findings{type,severity,status},
// ghas_posture_open_findings{owner,severity} (the TopOwners owners with
// the most open findings, the rest as owner "other") and
// ghas_posture_time_to_fix_seconds{type,severity} (a histogram of the
// fixes of the last 90 days). Each is computed from the index's
// aggregates when /metrics is read.
package posture

import (
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// TopOwners bounds the owner label: the owners beyond it are "other".
const TopOwners = 50

// FixBuckets are the time-to-fix histogram's bounds: an hour, six hours,
// a day, three days, a week, two weeks, 30, 60, 90 and 180 days.
var FixBuckets = []float64{3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 5184000, 7776000, 15552000}

// Register adds the posture metrics of ix to reg.
func Register(reg *metrics.Registry, ix *index.Index) {
	reg.NewGaugeFunc("ghas_posture_findings", "Findings by type, severity and status (KV ghas_findings as the console's index holds it).",
		[]string{"type", "severity", "status"}, func() []metrics.GaugeSample {
			c := ix.Counts()
			var out []metrics.GaugeSample
			for t, tn := range index.Types {
				for s, sn := range index.Severities {
					for st, stn := range index.Statuses {
						out = append(out, metrics.GaugeSample{Labels: []string{tn, sn, stn}, Value: float64(c[t][s][st])})
					}
				}
			}
			return out
		})
	reg.NewGaugeFunc("ghas_posture_open_findings", "ACTIVE findings by owner (the 50 owners with the most, the rest as \"other\"; \"\" for no owner) and severity.",
		[]string{"owner", "severity"}, func() []metrics.GaugeSample {
			var out []metrics.GaugeSample
			for _, o := range ix.OpenByOwner(TopOwners) {
				for _, sn := range index.Severities {
					out = append(out, metrics.GaugeSample{Labels: []string{o.Owner, sn}, Value: float64(o.Get(sn))})
				}
			}
			return out
		})
	reg.NewHistogramFunc("ghas_posture_time_to_fix_seconds", "Time from firstFoundOn to lastFixedOn of the findings fixed in the last 90 days, by type and severity.",
		[]string{"type", "severity"}, FixBuckets, func() []metrics.HistogramSample {
			var out []metrics.HistogramSample
			for t, tn := range index.Types {
				for s, sn := range index.Severities {
					counts, sum := ix.FixHistogram(t, s, FixBuckets)
					out = append(out, metrics.HistogramSample{Labels: []string{tn, sn}, Counts: counts, Sum: sum})
				}
			}
			return out
		})
}
