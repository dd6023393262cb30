package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// printTopPriorities prints the ten ACTIVE findings with the highest
// priority, each with the factors that explain its score.
func printTopPriorities(w io.Writer, docs []finding.Document) {
	var top []finding.Document
	for _, d := range docs {
		if f := d.Finding(); f != nil && f.FindingStatus == finding.StatusActive && f.Priority != nil {
			top = append(top, d)
		}
	}
	slices.SortStableFunc(top, func(a, b finding.Document) int {
		if d := b.Finding().Priority.Score - a.Finding().Priority.Score; d != 0 {
			return d
		}
		return strings.Compare(a.FindingKey, b.FindingKey)
	})
	top = top[:min(len(top), 10)]
	fmt.Fprintf(w, "\nThe %d ACTIVE findings with the highest priority (docs/mapping.md explains the score):\n", len(top))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRIORITY\tFINDING KEY\tREPOSITORY\tFACTORS")
	for _, d := range top {
		p := d.Finding().Priority
		var fs []string
		for _, f := range p.Factors {
			fs = append(fs, fmt.Sprintf("%s %s %+d", f.Name, f.Value, f.Points))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p.Score, d.FindingKey, d.AssetDetail.FullName, strings.Join(fs, ", "))
	}
	_ = tw.Flush()
}
