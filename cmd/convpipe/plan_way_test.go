package main

import (
	"strings"
	"testing"
	"time"
)

func TestChooseWay(t *testing.T) {
	const perHour = 1000.0 / 3600
	tests := []struct {
		name string
		in   wayInput
		way  string
		// why and also are fragments of the reasons.
		why, also string
		files     int
		api       time.Duration
	}{
		{name: "nothing", in: wayInput{perSecond: perHour}},
		{name: "a night's orders", in: wayInput{toSend: 800, batchable: 800, perSecond: perHour, rate: "1000/h", perFile: 10000},
			way: "api", why: "before impact would typically have processed", files: 1, api: 48 * time.Minute},
		{name: "backfill", in: wayInput{toSend: 100000, batchable: 100000, perSecond: perHour, rate: "1000/h", perFile: 10000},
			way: "batch", why: "about 4d4h0m0s at 1000/h", files: 10, api: 100 * time.Hour},
		{name: "backfill with old orders", in: wayInput{toSend: 100000, batchable: 90000, apiOnly: 10000, heldOld: 5, perSecond: perHour, rate: "1000/h", perFile: 10000},
			way: "batch", also: "10000 orders older than 88 days cannot go in a batch file: send them with --via api afterwards (about 10h0m0s); 5 orders older than mapping.max_event_age", files: 9, api: 100 * time.Hour},
		{name: "all too old for files", in: wayInput{toSend: 50000, apiOnly: 50000, perSecond: perHour, rate: "1000/h", perFile: 10000},
			way: "api", why: "no order to send is recent enough", api: 50 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := chooseWay(tt.in)
			if p.Way != tt.way || !strings.Contains(p.Why, tt.why) || !strings.Contains(p.Also, tt.also) || p.Files != tt.files || p.API.Round(time.Minute) != tt.api {
				t.Errorf("chooseWay = %+v", p)
			}
		})
	}
}
