package pipeline

import "testing"

func TestItemFieldName(t *testing.T) {
	for _, tt := range []struct {
		name string
		i    int
		want string
	}{{"ItemSku", 1, "ItemSku1"}, {"ItemText_2", 3, "ItemText3_2"}, {"ItemMoney_1", 12, "ItemMoney12_1"}} {
		if got := ItemFieldName(tt.name, tt.i); got != tt.want {
			t.Errorf("ItemFieldName(%q, %d) = %q, want %q", tt.name, tt.i, got, tt.want)
		}
	}
}
