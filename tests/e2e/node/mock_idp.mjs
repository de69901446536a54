// An OpenID Connect provider this project did not write (oauth2-mock-server), for the gateway's
// federation and external-mode tests. Listens on a free loopback port and prints
// `MOCK_IDP_ISSUER=<url>` once ready; exits when its stdin closes (the test ended).
//
// MOCK_IDP_CLAIMS (JSON object) is merged into every token it signs (access and id tokens):
// the user's sub, email and groups. A token request may carry `mock_claims` and `mock_header`
// (JSON objects) merged last, so a test can ask for a wrong issuer, an expired token or a
// forged key id.
import { OAuth2Server } from 'oauth2-mock-server';

const parse = (text, what) => {
  if (text === undefined || text === '') return {};
  const value = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object`);
  }
  return value;
};

const claims = parse(process.env.MOCK_IDP_CLAIMS, 'MOCK_IDP_CLAIMS');
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  const body = req.body ?? {};
  Object.assign(token.payload, claims, parse(body.mock_claims, 'mock_claims'));
  Object.assign(token.header, parse(body.mock_header, 'mock_header'));
});
await server.start(0, '127.0.0.1');
// The library names its issuer `localhost`; the address it listens on is exact.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
console.log(`MOCK_IDP_ISSUER=${server.issuer.url}`);

process.stdin.on('end', () => server.stop().finally(() => process.exit(0)));
process.stdin.resume();
