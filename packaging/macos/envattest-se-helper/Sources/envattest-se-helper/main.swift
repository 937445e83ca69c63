// envattest-se-helper: one JSON request on stdin, one JSON answer on stdout.
//
// Protocol (binary values are unpadded base64url), mirrored by attest/keys/secure_enclave.py:
//   {"op":"create"}                  -> {"ok":true,"key":K,"public":P}
//   {"op":"public","key":K}          -> {"ok":true,"public":P}
//   {"op":"sign","key":K,"data":D}   -> {"ok":true,"signature":S}
//   failure                          -> {"ok":false,"error":CODE,"message":M}
// K = SecureEnclave.P256.Signing.PrivateKey.dataRepresentation (opaque, device-bound),
// P = X9.63 uncompressed public point, S = DER ECDSA over SHA-256(D).
// CODE: unavailable | invalid_key | auth_failed | bad_request.

import CryptoKit
import Foundation
import LocalAuthentication

func b64url(_ data: Data) -> String {
    data.base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

func unb64url(_ text: String) -> Data? {
    var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s)
}

func answer(_ object: [String: Any]) -> Never {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write("\n".data(using: .utf8)!)
    exit(object["ok"] as? Bool == true ? 0 : 1)
}

func fail(_ code: String, _ message: String) -> Never {
    answer(["ok": false, "error": code, "message": message])
}

func loadKey(_ request: [String: Any]) -> SecureEnclave.P256.Signing.PrivateKey {
    guard let text = request["key"] as? String, let blob = unb64url(text) else {
        fail("bad_request", "missing or malformed 'key'")
    }
    do {
        return try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: blob)
    } catch {
        fail("invalid_key", "\(error)")
    }
}

guard SecureEnclave.isAvailable else { fail("unavailable", "no Secure Enclave on this Mac") }
guard let line = readLine(strippingNewline: true),
      let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)),
      let request = json as? [String: Any],
      let op = request["op"] as? String
else { fail("bad_request", "expected one JSON object with an 'op' member") }

switch op {
case "create":
    do {
        // No access-control flags: the agent signs unattended (token helper); the key is
        // still non-exportable and bound to this Secure Enclave.
        let key = try SecureEnclave.P256.Signing.PrivateKey()
        answer(["ok": true, "key": b64url(key.dataRepresentation),
                "public": b64url(key.publicKey.x963Representation)])
    } catch {
        fail("unavailable", "\(error)")
    }
case "public":
    let key = loadKey(request)
    answer(["ok": true, "public": b64url(key.publicKey.x963Representation)])
case "sign":
    let key = loadKey(request)
    guard let text = request["data"] as? String, let data = unb64url(text) else {
        fail("bad_request", "missing or malformed 'data'")
    }
    do {
        let signature = try key.signature(for: data)  // SHA-256, then ECDSA in the enclave
        answer(["ok": true, "signature": b64url(signature.derRepresentation)])
    } catch let error as LAError {
        fail("auth_failed", "\(error)")
    } catch {
        fail("invalid_key", "\(error)")
    }
default:
    fail("bad_request", "unknown op '\(op)'")
}
