// The part of hpack.js (RFC 7541 HPACK; it ships no types) that the authority front uses.
declare module 'hpack.js' {
  export interface DecodedHeader {
    readonly name: string;
    readonly value: string;
    readonly neverIndex: boolean;
  }
  export interface Decompressor {
    write(block: Buffer): boolean;
    execute(cb?: (err: Error | null) => void): void;
    read(): DecodedHeader | null;
    on(event: 'error', listener: (err: Error) => void): this;
  }
  const hpack: {
    readonly decompressor: {
      create(options: { readonly table: { readonly maxSize: number } }): Decompressor;
    };
  };
  export default hpack;
}
