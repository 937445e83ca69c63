-- envattest forward auth for HAProxy 2.6+ (docs/gateways.md, "HAProxy").
--
-- The action `lua.envattest_authz` asks the verifier's GET /v1/authz about the request's
-- token (Authorization, X-Api-Key, DPoP) and, on 204 only, stores the identity the verifier
-- answered in txn.envattest_device / _key_class / _policy_version. The configuration refuses
-- the request when txn.envattest_device is not set, so an unreachable verifier fails closed.
--
-- The verifier URL comes from the environment variable ENVATTEST_AUTHZ_URL
-- (`setenv ENVATTEST_AUTHZ_URL http://verifier.internal:8080/v1/authz` in `global`).

local FORWARDED = { "authorization", "x-api-key", "dpop" }
local IDENTITY = {
  envattest_device = "x-envattest-device",
  envattest_key_class = "x-envattest-key-class",
  envattest_policy_version = "x-envattest-policy-version",
}

local function first_value(values)
  if type(values) ~= "table" then
    return values
  end
  -- request headers are indexed from 0, httpclient answers from 1: take the lowest index
  local lowest, found = nil, nil
  for index, value in pairs(values) do
    if lowest == nil or index < lowest then
      lowest, found = index, value
    end
  end
  return found
end

core.register_action("envattest_authz", { "http-req" }, function(txn)
  local url = os.getenv("ENVATTEST_AUTHZ_URL")
  if url == nil or url == "" then
    core.Alert("envattest: ENVATTEST_AUTHZ_URL is not set; every request is refused")
    return
  end
  local incoming = txn.http:req_get_headers()
  local sent = {
    ["x-original-method"] = { txn.f:method() },
    ["x-original-uri"] = { txn.f:pathq() },
  }
  for _, name in ipairs(FORWARDED) do
    local value = first_value(incoming[name])
    if value ~= nil then
      sent[name] = { value }
    end
  end
  local answer = core.httpclient():get({ url = url, headers = sent, timeout = 3000 })
  if answer == nil or answer.status ~= 204 then
    return
  end
  for var, header in pairs(IDENTITY) do
    txn:set_var("txn." .. var, first_value(answer.headers[header]) or "")
  end
end, 0)
