/**
 * ONNX protobuf reading and writing for the model tools (Node only).
 *
 * The schema below is the subset of onnx.proto (IR version 8+) the tools need, with the same field
 * numbers as upstream. Messages the tools never inspect (functions, training info, sparse
 * initializers, non-tensor types, quantization annotations) are declared as `bytes`: a
 * length-delimited sub-message decodes as opaque bytes and re-encodes unchanged, so nothing is
 * lost on a read → write round trip.
 */
import protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message StringStringEntryProto { string key = 1; string value = 2; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; bytes sequence_type = 4; bytes map_type = 5; bytes optional_type = 9; bytes sparse_tensor_type = 8; }
  string denotation = 6;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; repeated StringStringEntryProto metadata_props = 4; }
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  bytes segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;
}
message AttributeProto {
  string name = 1;
  string ref_attr_name = 21;
  string doc_string = 13;
  int32 type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  bytes sparse_tensor = 22;
  bytes tp = 14;
  repeated float floats = 7 [packed = true];
  repeated int64 ints = 8 [packed = true];
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  repeated bytes sparse_tensors = 23;
  repeated bytes type_protos = 15;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  string overload = 8;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  repeated StringStringEntryProto metadata_props = 9;
}
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated bytes sparse_initializer = 15;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated bytes quantization_annotation = 14;
  repeated StringStringEntryProto metadata_props = 16;
}
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated bytes training_info = 20;
  repeated bytes functions = 25;
}
`;

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
  UINT4: 21,
  INT4: 22,
} as const;

export const AttrType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

export interface StringStringEntry {
  key?: string;
  value?: string;
}
export interface Dim {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim?: Dim[] } };
  sequenceType?: Uint8Array;
  mapType?: Uint8Array;
  optionalType?: Uint8Array;
  sparseTensorType?: Uint8Array;
  denotation?: string;
}
export interface ValueInfo {
  name: string;
  type?: TypeProto;
  docString?: string;
}
export interface TensorProto {
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  uint64Data?: number[];
  stringData?: Uint8Array[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntry[];
  dataLocation?: number;
  segment?: Uint8Array;
  metadataProps?: StringStringEntry[];
}
export interface Attribute {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: Graph;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: Graph[];
  refAttrName?: string;
  docString?: string;
}
export interface OnnxNode {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: Attribute[];
  docString?: string;
  metadataProps?: StringStringEntry[];
}
export interface Graph {
  node: OnnxNode[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: Uint8Array[];
  docString?: string;
  input?: ValueInfo[];
  output?: ValueInfo[];
  valueInfo?: ValueInfo[];
  quantizationAnnotation?: Uint8Array[];
  metadataProps?: StringStringEntry[];
}
export interface Model {
  irVersion?: number;
  opsetImport?: { domain?: string; version?: number }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: Graph;
  metadataProps?: StringStringEntry[];
  trainingInfo?: Uint8Array[];
  functions?: Uint8Array[];
}

let modelType: protobuf.Type | undefined;
function ModelType(): protobuf.Type {
  if (!modelType)
    modelType = protobuf.parse(ONNX_PROTO, { keepCase: false }).root.lookupType('onnx.ModelProto');
  return modelType;
}

/** Decodes ONNX model bytes. int64 fields become JS numbers (exact below 2^53, which covers dims and offsets). */
export function decodeModel(bytes: Uint8Array): Model {
  const T = ModelType();
  const msg = T.decode(bytes);
  const obj = T.toObject(msg, { longs: Number, arrays: true, defaults: false, oneofs: false }) as Model;
  if (!obj.graph) throw new Error('not an ONNX model: no graph');
  normaliseGraph(obj.graph);
  return obj;
}

function normaliseGraph(g: Graph): void {
  g.node ??= [];
  for (const n of g.node) {
    n.input ??= [];
    n.output ??= [];
    for (const a of n.attribute ?? []) {
      if (a.g) normaliseGraph(a.g);
      for (const sg of a.graphs ?? []) normaliseGraph(sg);
    }
  }
}

export function encodeModel(model: Model): Uint8Array {
  const T = ModelType();
  const msg = T.fromObject(model);
  return T.encode(msg).finish();
}

// ---------------------------------------------------------------- construction helpers

export function tensorFromFloat32(name: string, dims: number[], data: Float32Array): TensorProto {
  return {
    name,
    dims,
    dataType: DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  };
}
export function tensorFromInt64(name: string, dims: number[], data: number[]): TensorProto {
  const b = new BigInt64Array(data.map((x) => BigInt(x)));
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(b.buffer).slice() };
}
export function tensorFromInt32(name: string, dims: number[], data: number[]): TensorProto {
  const b = Int32Array.from(data);
  return { name, dims, dataType: DataType.INT32, rawData: new Uint8Array(b.buffer).slice() };
}

export type AttrValue = number | string | number[] | TensorProto | { float: number } | { floats: number[] };
/** Attribute from a JS value: integer → INT, {float} → FLOAT, string → STRING, number[] → INTS. */
export function attr(name: string, v: AttrValue): Attribute {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float} for non-integers`);
    return { name, type: AttrType.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if ('float' in v) return { name, type: AttrType.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: AttrType.FLOATS, floats: v.floats };
  return { name, type: AttrType.TENSOR, t: v };
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function getAttr(n: OnnxNode, name: string): Attribute | undefined {
  return n.attribute?.find((a) => a.name === name);
}

/** Shape of a value info as numbers and symbolic names. */
export function valueInfoShape(v: ValueInfo): (number | string)[] | undefined {
  const dims = v.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d, i) => (d.dimValue !== undefined ? d.dimValue : (d.dimParam ?? `d${i}`)));
}

export const DTYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
  21: 'uint4',
  22: 'int4',
};

/** Bytes per element (sub-byte types rounded: only used for statistics). */
export function dtypeBytes(dt: number): number {
  switch (dt) {
    case 1:
    case 6:
    case 12:
      return 4;
    case 7:
    case 11:
    case 13:
      return 8;
    case 4:
    case 5:
    case 10:
    case 16:
      return 2;
    case 21:
    case 22:
      return 0.5;
    default:
      return 1;
  }
}
