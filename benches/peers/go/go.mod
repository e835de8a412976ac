module webhook-guard/benches/peers/go

go 1.19
