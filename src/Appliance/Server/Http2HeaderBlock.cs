using Appliance.Protocol.Headers;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http1;
using Appliance.Protocol.Http2;

namespace Appliance.Server;

/// <summary>
/// Collects one decoded request header block (or trailer block) into a stream's request context and checks
/// the RFC 9113 §8.2–8.3 rules as fields arrive: lowercase names, no connection-specific fields, TE only
/// "trailers", pseudo-headers known, single, first and complete, :authority consistent with Host. A block for
/// a refused stream is still decoded (HPACK state must stay in sync) into no context.
/// </summary>
internal sealed class Http2HeaderBlock
{
    private RequestContext? _context;
    private bool _trailers;
    private bool _regularSeen;
    private bool _hasMethod, _hasScheme, _hasPath, _hasAuthority, _hasProtocol;
    private byte[] _authority = new byte[256];
    private int _authorityLength;

    // Table entries (see IHpackHeaderHandler.OnIndexedHeader) that passed the per-field checks below (for a
    // pseudo-header, its value's own checks too: a token, a host, a target), and their KnownHeader: a client
    // references the same few entries (:authority, user-agent…) in every request, and an entry never changes.
    // Direct-mapped by entry number; a clash only costs a check.
    private const int CheckedSlots = 64;
    private readonly long[] _checkedEntries = new long[CheckedSlots];
    private readonly KnownHeader[] _checkedKnown = new KnownHeader[CheckedSlots];

    public int StreamId { get; private set; }

    public bool EndStream { get; private set; }

    public int ContinuationFrames { get; set; }

    public int FragmentBytes { get; set; }

    /// <summary>First rule broken, if any (the stream is then reset with PROTOCOL_ERROR).</summary>
    public string? Malformed { get; private set; }

    public long ContentLength { get; private set; }

    public bool IsOpen => StreamId != 0;

    public bool IsTrailers => _trailers;

    /// <summary>A well-formed CONNECT request (§8.5): not malformed, but we do not tunnel (answered 501).</summary>
    public bool IsConnect { get; private set; }

    public void Begin(int streamId, bool endStream, RequestContext? context, bool trailers)
    {
        StreamId = streamId;
        EndStream = endStream;
        _context = context;
        _trailers = trailers;
        _regularSeen = _hasMethod = _hasScheme = _hasPath = _hasAuthority = _hasProtocol = false;
        _authorityLength = 0;
        ContinuationFrames = 0;
        FragmentBytes = 0;
        Malformed = null;
        ContentLength = -1;
        IsConnect = false;
    }

    public void End() => StreamId = 0;

    private void Fail(string reason) => Malformed ??= reason;

    /// <param name="entry">The table entry the field was indexed from, 0 for a literal.</param>
    public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry)
    {
        if (Malformed is not null || _context is null)
        {
            return;
        }

        int slot = (int)(entry & (CheckedSlots - 1));
        if (entry != 0 && _checkedEntries[slot] == entry)
        {
            if (name[0] == (byte)':')
            {
                OnPseudoHeader(name, value, valueChecked: true);
            }
            else
            {
                _regularSeen = true;
                OnRegularHeader(_checkedKnown[slot], name, value);
            }

            return;
        }

        if (name.IsEmpty)
        {
            Fail("empty field name");
            return;
        }

        if (HttpCharacters.IndexOfInvalidFieldValueChar(value) >= 0)
        {
            Fail("invalid character in field value");
            return;
        }

        if (!value.IsEmpty && (HttpCharacters.IsWhitespace(value[0]) || HttpCharacters.IsWhitespace(value[^1])))
        {
            Fail("field value starts or ends with whitespace"); // RFC 9113 §8.2.1
            return;
        }

        if (name[0] == (byte)':')
        {
            OnPseudoHeader(name, value, valueChecked: false);
            if (entry != 0 && Malformed is null)
            {
                _checkedEntries[slot] = entry; // a known pseudo-header whose value passed its checks
            }

            return;
        }

        _regularSeen = true;
        if (HttpCharacters.IndexOfInvalidTokenChar(name) >= 0)
        {
            Fail("invalid character in field name");
            return;
        }

        if (name.IndexOfAnyInRange((byte)'A', (byte)'Z') >= 0)
        {
            Fail("uppercase field name"); // RFC 9113 §8.2.1
            return;
        }

        KnownHeader known = KnownHeaders.Lookup(name);
        if (entry != 0)
        {
            _checkedEntries[slot] = entry;
            _checkedKnown[slot] = known;
        }

        OnRegularHeader(known, name, value);
    }

    /// <summary>The checks of a regular field that depend on which field it is, then the field is kept.</summary>
    private void OnRegularHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        switch (known)
        {
            case KnownHeader.Connection or KnownHeader.ProxyConnection or KnownHeader.KeepAlive
                or KnownHeader.TransferEncoding or KnownHeader.Upgrade:
                Fail("connection-specific field " + System.Text.Encoding.ASCII.GetString(name)); // §8.2.2
                return;
            case KnownHeader.TE when !System.Text.Ascii.EqualsIgnoreCase(value, "trailers"u8):
                Fail("TE other than trailers");
                return;
            case KnownHeader.ContentLength when !_trailers:
                if (ContentLength >= 0 || !Http1RequestFraming.TryParseContentLength(value, out long length))
                {
                    Fail("invalid or repeated content-length");
                    return;
                }

                ContentLength = length;
                break;
        }

        if (_trailers)
        {
            return; // trailers are validated, not stored yet
        }

        _context!.RequestHeaders.Add(known, name, value); // (OnHeader returned already when there is no context)
    }

    /// <param name="valueChecked">The value is a table entry's that passed this pseudo-header's checks before.</param>
    private void OnPseudoHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool valueChecked)
    {
        if (_trailers)
        {
            Fail("pseudo-header in trailers"); // §8.1
            return;
        }

        if (_regularSeen)
        {
            Fail("pseudo-header after a regular field"); // §8.3
            return;
        }

        RequestContext c = _context!;
        if (name.SequenceEqual(":method"u8))
        {
            if (_hasMethod || (!valueChecked && !HttpCharacters.IsToken(value))) { Fail("invalid or repeated :method"); return; }
            _hasMethod = true;
            c.SetMethod(HttpMethods.FromBytes(value), value);
        }
        else if (name.SequenceEqual(":path"u8))
        {
            if (_hasPath || (!valueChecked && (value.IsEmpty || HttpCharacters.IndexOfInvalidTargetChar(value) >= 0))) { Fail("invalid or repeated :path"); return; }
            _hasPath = true;
            c.SetTarget(value);
        }
        else if (name.SequenceEqual(":scheme"u8))
        {
            if (_hasScheme || (!valueChecked && !HttpCharacters.IsToken(value))) { Fail("invalid or repeated :scheme"); return; }
            _hasScheme = true;
        }
        else if (name.SequenceEqual(":authority"u8))
        {
            if (_hasAuthority || (!valueChecked && !Http1RequestFraming.IsValidHost(value))) { Fail("invalid or repeated :authority"); return; }
            _hasAuthority = true;
            if (_authority.Length < value.Length) _authority = new byte[value.Length];
            value.CopyTo(_authority);
            _authorityLength = value.Length;
        }
        else if (name.SequenceEqual(":protocol"u8))
        {
            // RFC 8441 §4 (we advertise SETTINGS_ENABLE_CONNECT_PROTOCOL): the protocol an extended CONNECT asks for.
            if (_hasProtocol || (!valueChecked && !HttpCharacters.IsToken(value))) { Fail("invalid or repeated :protocol"); return; }
            _hasProtocol = true;
            c.SetUpgradeProtocol(value);
        }
        else
        {
            Fail("unknown pseudo-header"); // includes :status in a request
        }
    }

    /// <summary>Checks what can only be checked at the end of the block; fills the authority.</summary>
    public void Complete()
    {
        if (Malformed is not null || _context is null || _trailers)
        {
            return;
        }

        RequestContext c = _context;
        if (_hasProtocol && c.Method != HttpMethod.Connect)
        {
            Fail(":protocol on a request other than CONNECT"); // RFC 8441 §4
            return;
        }

        if (c.Method == HttpMethod.Connect && _hasProtocol)
        {
            // RFC 8441 §4: an extended CONNECT carries :scheme, :path and :authority like any request; it goes to
            // the routes (which may tunnel it) rather than being refused as a plain CONNECT.
            if (!_hasScheme || !_hasPath || !_hasAuthority)
            {
                Fail("extended CONNECT needs :scheme, :path and :authority");
                return;
            }
        }
        else if (c.Method == HttpMethod.Connect)
        {
            // RFC 9113 §8.5: :method and :authority only; with :scheme or :path (and no :protocol, which we do not
            // advertise) it is malformed. A well-formed one is answered 501 like on HTTP/1.1: no tunnelling here.
            if (_hasScheme || _hasPath || !_hasAuthority)
            {
                Fail("CONNECT needs :authority and no :scheme or :path");
                return;
            }

            IsConnect = true;
            return;
        }

        if (!_hasMethod || !_hasScheme || !_hasPath)
        {
            Fail("missing :method, :scheme or :path"); // §8.3.1
            return;
        }

        ReadOnlySpan<byte> authority = _authority.AsSpan(0, _authorityLength);
        if (c.RequestHeaders.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host))
        {
            if (c.RequestHeaders.CountOf(KnownHeader.Host) > 1 || !Http1RequestFraming.IsValidHost(host))
            {
                Fail("invalid host");
                return;
            }

            if (_hasAuthority && !System.Text.Ascii.EqualsIgnoreCase(host, authority))
            {
                Fail(":authority and host differ"); // §8.3.1
                return;
            }

            if (!_hasAuthority)
            {
                authority = host;
            }
        }

        if (!c.SetAuthority(authority))
        {
            Fail("invalid :authority");
        }
    }

    /// <summary>The struct the HPACK decoder calls (generic over it, so the call devirtualizes).</summary>
    public readonly struct Handler(Http2HeaderBlock block) : IHpackHeaderHandler
    {
        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => block.OnHeader(name, value, 0);

        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => block.OnHeader(name, value, entry);
    }
}
