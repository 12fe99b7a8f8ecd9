package projections

import (
	"slices"
	"testing"
)

func TestServingBuildingFind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		give         []Generation
		wantServing  uint32
		wantBuilding []uint32
	}{
		{"none", nil, 0, nil},
		{"one serving", []Generation{{Number: 1, State: StateServing}}, 1, nil},
		{"after a rollback", []Generation{{Number: 1, State: StateServing}, {Number: 2, State: StateRetired}, {Number: 3, State: StateBuilding}, {Number: 4, State: StateDetached}}, 1, []uint32{3}},
		{"building only", []Generation{{Number: 2, State: StateBuilding}, {Number: 5, State: StateBuilding}}, 0, []uint32{2, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Serving(tt.give); got != tt.wantServing {
				t.Errorf("Serving = %d, want %d", got, tt.wantServing)
			}
			if got := Building(tt.give); !slices.Equal(got, tt.wantBuilding) {
				t.Errorf("Building = %v, want %v", got, tt.wantBuilding)
			}
			for _, g := range tt.give {
				if got, ok := Find(tt.give, g.Number); !ok || got != g {
					t.Errorf("Find(%d) = %+v, %t; want %+v", g.Number, got, ok, g)
				}
			}
			if _, ok := Find(tt.give, 99); ok {
				t.Errorf("Find(99) found a generation that is not listed")
			}
		})
	}
}
