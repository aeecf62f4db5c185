package admin

import (
	"context"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
)

// GroupIDs lists the ids of the cluster's consumer groups, sorted, each
// once (every broker coordinating groups answers for its own).
func (a *Admin) GroupIDs(ctx context.Context) ([]string, error) {
	c, done := a.session()
	defer done()
	resp, err := c.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, fmt.Errorf("listing consumer groups: %w", err)
	}
	seen := make(map[string]bool, len(resp.Groups))
	ids := make([]string, 0, len(resp.Groups))
	for _, g := range resp.Groups {
		if !seen[g.GroupID] {
			seen[g.GroupID] = true
			ids = append(ids, g.GroupID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
