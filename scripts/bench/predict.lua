-- POST /api/predict with the original README's example body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BFP_TOKEN set: sent as a bearer token (scripts/bench/auth.sh).
local token = os.getenv("BFP_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120}'

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d non2xx_seen_by_script=%d errors_connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, non200, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
end
