package proxy

import (
	"time"

	"go.uber.org/zap"
)

// logAccess writes the exchange's access log line. It names the client by
// config name and key hash prefix; it never logs a header value or a query
// string, where keys and tokens travel.
func (ex *exchange) logAccess(elapsed time.Duration) {
	ce := ex.snap.accessLog.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	// Set one by one: an array literal would be a 1 KiB temporary on the
	// stack.
	f := &ex.accessFields
	f[0] = zap.String("method", ex.method)
	f[1] = zap.String("path", ex.path)
	f[2] = zap.String("client", ex.decision.Client)
	f[3] = zap.ByteString("key_id", ex.decision.AppendKeyID(ex.keyIDHex[:0]))
	f[4] = zap.String("mode", string(ex.decision.Mode))
	f[5] = zap.Int("upstream_status", ex.upstreamStatus)
	f[6] = zap.Int("status", ex.w.status)
	f[7] = zap.String("action", ex.result.Action.String())
	f[8] = zap.String("reason", string(ex.result.Reason))
	f[9] = zap.String("rule", ex.result.Rule)
	f[10] = zap.String("legacy_code", ex.result.LegacyCode)
	f[11] = zap.String("code", ex.result.Code)
	f[12] = zap.String("upstream_error", ex.upstreamError)
	f[13] = zap.String("client_error", ex.clientError)
	f[14] = zap.Int64("bytes_in", ex.bytesIn())
	f[15] = zap.Int64("bytes_out", ex.w.bytes)
	f[16] = zap.Duration("duration", elapsed)
	f[17] = zap.Duration("upstream_duration", ex.upstreamTime)
	ce.Write(ex.accessFields[:]...)
	clear(ex.accessFields[:])
}
