// The in-memory half of an MCP TypeScript SDK OAuthClientProvider, shared by the headless
// test clients: client registration, tokens, PKCE verifier, discovery state and the state
// parameter live in the object for one run. Subclasses add clientMetadata and the headless
// redirectToAuthorization for their authorization server.
import { randomBytes } from 'node:crypto';

export class MemoryOAuthProvider {
  constructor({ redirectUrl, timeoutMs }) {
    this._redirectUrl = redirectUrl;
    this.timeoutMs = timeoutMs;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this._state = undefined;
    this.authorizationCode = undefined;
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no PKCE code verifier saved');
    return this._codeVerifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }
}
