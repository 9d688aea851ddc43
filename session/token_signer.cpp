#include "session/token_signer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace sluice::session {
namespace {

constexpr std::string_view kB64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kB64Url[(n >> 18) & 63];
    out += kB64Url[(n >> 12) & 63];
    out += kB64Url[(n >> 6) & 63];
    out += kB64Url[n & 63];
  }
  if (i < in.size()) {
    unsigned n = at(i) << 16;
    if (i + 1 < in.size()) n |= at(i + 1) << 8;
    out += kB64Url[(n >> 18) & 63];
    out += kB64Url[(n >> 12) & 63];
    if (i + 1 < in.size()) out += kB64Url[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto pos = kB64Url.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// An HMAC-SHA256 context keyed once; each MAC starts from a copy of it, which skips looking
// up the digest and hashing the key on every call (most of a one-shot HMAC()'s cost).
std::shared_ptr<EVP_MAC_CTX> keyed_hmac(const std::string& key) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (hmac == nullptr) throw std::runtime_error("OpenSSL has no HMAC");
  std::shared_ptr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_new(hmac), EVP_MAC_CTX_free);
  EVP_MAC_free(hmac);  // the context keeps its own reference
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()),
                           key.size(), params) != 1) {
    throw std::runtime_error("cannot key HMAC-SHA256");
  }
  return ctx;
}

std::string mac(const EVP_MAC_CTX* keyed, std::string_view payload) {
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_dup(keyed),
                                                                EVP_MAC_CTX_free);
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t len = 0;
  if (!ctx ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(payload.data()),
                     payload.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

}  // namespace

TokenSigner::TokenSigner(std::string key) {
  if (key.size() < 32) throw std::invalid_argument("session_key: needs at least 32 bytes");
  keyed_ = keyed_hmac(key);
  OPENSSL_cleanse(key.data(), key.size());
}

TokenSigner TokenSigner::random() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    throw std::runtime_error("cannot draw a random session key from OpenSSL");
  }
  return TokenSigner(std::move(key));
}

std::string TokenSigner::sign(std::string_view payload) const {
  return b64url_encode(payload) + "." + b64url_encode(mac(keyed_.get(), payload));
}

std::optional<std::string> TokenSigner::verify(std::string_view token) const {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto payload = b64url_decode(token.substr(0, dot));
  auto sig = b64url_decode(token.substr(dot + 1));
  if (!payload || !sig) return std::nullopt;
  const std::string expected = mac(keyed_.get(), *payload);
  if (sig->size() != expected.size() ||
      CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0) {
    return std::nullopt;
  }
  return payload;
}

}  // namespace sluice::session
