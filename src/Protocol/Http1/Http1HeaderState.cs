namespace Appliance.Protocol.Http1;

/// <summary>What <see cref="Http1RequestParser.TryParseHeaders"/> has counted so far in one field section, so a
/// section that arrives in pieces is limited as a whole. Reset it for every request.</summary>
public struct Http1HeaderState
{
    /// <summary>Field lines consumed.</summary>
    public int Count;

    /// <summary>Bytes consumed, CRLFs included.</summary>
    public int Bytes;

    public void Reset()
    {
        Count = 0;
        Bytes = 0;
    }
}
