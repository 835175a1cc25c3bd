// A stub of Apple's <Metal/Metal.h> for checking the Objective-C in
// metal/device_darwin.go's cgo preamble on Linux (.ci/objc-check, clang with
// GNUstep's Foundation). It declares exactly the API the preamble uses,
// written from Apple's documentation: each declaration cites its page. A
// call the real header would reject (a wrong selector, argument type or
// count, a missing cast) is then an error here too. Values of enumerations
// are the documented ones.
#pragma once
#import <Foundation/Foundation.h>

// The SDK this stub describes (what <Availability.h> says on a Mac with the
// macOS 15 SDK), so that code guarded by it is checked too.
// https://developer.apple.com/documentation/xcode/running-code-on-a-specific-version
#ifndef __MAC_OS_X_VERSION_MAX_ALLOWED
#define __MAC_OS_X_VERSION_MAX_ALLOWED 150000
#endif
#include <stdint.h>

// https://developer.apple.com/documentation/metal/mtlsize
typedef struct {
  NSUInteger width, height, depth;
} MTLSize;
// https://developer.apple.com/documentation/metal/mtlsizemake(_:_:_:)
static inline MTLSize MTLSizeMake(NSUInteger width, NSUInteger height, NSUInteger depth) {
  MTLSize s = {width, height, depth};
  return s;
}

// https://developer.apple.com/documentation/metal/mtldispatchtype
typedef NS_ENUM(NSUInteger, MTLDispatchType) {
  MTLDispatchTypeSerial = 0,
  MTLDispatchTypeConcurrent = 1,
};

// https://developer.apple.com/documentation/metal/mtlcommandbufferstatus
typedef NS_ENUM(NSUInteger, MTLCommandBufferStatus) {
  MTLCommandBufferStatusNotEnqueued = 0,
  MTLCommandBufferStatusEnqueued = 1,
  MTLCommandBufferStatusCommitted = 2,
  MTLCommandBufferStatusScheduled = 3,
  MTLCommandBufferStatusCompleted = 4,
  MTLCommandBufferStatusError = 5,
};

// https://developer.apple.com/documentation/metal/mtlgpufamily
typedef NS_ENUM(NSInteger, MTLGPUFamily) {
  MTLGPUFamilyApple7 = 1007,
  MTLGPUFamilyApple8 = 1008,
  MTLGPUFamilyApple9 = 1009,
};

// https://developer.apple.com/documentation/metal/mtllanguageversion
typedef NS_ENUM(NSUInteger, MTLLanguageVersion) {
  MTLLanguageVersion3_0 = (3 << 16),
  MTLLanguageVersion3_1 = (3 << 16) + 1,
};

// https://developer.apple.com/documentation/metal/mtlmathmode
typedef NS_ENUM(NSInteger, MTLMathMode) {
  MTLMathModeSafe = 0,
  MTLMathModeRelaxed = 1,
  MTLMathModeFast = 2,
};

@protocol MTLDevice;

// https://developer.apple.com/documentation/metal/mtlresource
@protocol MTLResource <NSObject>
@end

// https://developer.apple.com/documentation/metal/mtlbuffer
@protocol MTLBuffer <MTLResource>
@end

// https://developer.apple.com/documentation/metal/mtlfunction
@protocol MTLFunction <NSObject>
@end

// https://developer.apple.com/documentation/metal/mtllibrary
@protocol MTLLibrary <NSObject>
@end

// https://developer.apple.com/documentation/metal/mtlcomputepipelinestate
@protocol MTLComputePipelineState <NSObject>
// https://developer.apple.com/documentation/metal/mtlcomputepipelinestate/threadexecutionwidth
@property(readonly) NSUInteger threadExecutionWidth;
// https://developer.apple.com/documentation/metal/mtlcomputepipelinestate/maxtotalthreadsperthreadgroup
@property(readonly) NSUInteger maxTotalThreadsPerThreadgroup;
@end

// https://developer.apple.com/documentation/metal/mtlevent
@protocol MTLEvent <NSObject>
@end

// https://developer.apple.com/documentation/metal/mtlsharedevent
@protocol MTLSharedEvent <MTLEvent>
// https://developer.apple.com/documentation/metal/mtlsharedevent/signaledvalue
@property uint64_t signaledValue;
// https://developer.apple.com/documentation/metal/mtlsharedevent/wait(untilsignaledvalue:timeoutms:)
- (BOOL)waitUntilSignaledValue:(uint64_t)value timeoutMS:(uint64_t)milliseconds;
@end

// https://developer.apple.com/documentation/metal/mtlcommandencoder
@protocol MTLCommandEncoder <NSObject>
// https://developer.apple.com/documentation/metal/mtlcommandencoder/endencoding()
- (void)endEncoding;
@end

// https://developer.apple.com/documentation/metal/mtlcomputecommandencoder
@protocol MTLComputeCommandEncoder <MTLCommandEncoder>
// https://developer.apple.com/documentation/metal/mtlcomputecommandencoder/setcomputepipelinestate(_:)
- (void)setComputePipelineState:(id<MTLComputePipelineState>)state;
// https://developer.apple.com/documentation/metal/mtlcomputecommandencoder/setbuffer(_:offset:index:)
- (void)setBuffer:(id<MTLBuffer>)buffer offset:(NSUInteger)offset atIndex:(NSUInteger)index;
// https://developer.apple.com/documentation/metal/mtlcomputecommandencoder/dispatchthreadgroups(_:threadsperthreadgroup:)
- (void)dispatchThreadgroups:(MTLSize)threadgroupsPerGrid threadsPerThreadgroup:(MTLSize)threadsPerThreadgroup;
@end

// https://developer.apple.com/documentation/metal/mtlblitcommandencoder
@protocol MTLBlitCommandEncoder <MTLCommandEncoder>
// https://developer.apple.com/documentation/metal/mtlblitcommandencoder/copy(from:sourceoffset:to:destinationoffset:size:)
- (void)copyFromBuffer:(id<MTLBuffer>)sourceBuffer
          sourceOffset:(NSUInteger)sourceOffset
              toBuffer:(id<MTLBuffer>)destinationBuffer
     destinationOffset:(NSUInteger)destinationOffset
                  size:(NSUInteger)size;
@end

// https://developer.apple.com/documentation/metal/mtlcommandbuffer
@protocol MTLCommandBuffer <NSObject>
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/makecomputecommandencoder(dispatchtype:)
- (id<MTLComputeCommandEncoder>)computeCommandEncoderWithDispatchType:(MTLDispatchType)dispatchType;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/makeblitcommandencoder()
- (id<MTLBlitCommandEncoder>)blitCommandEncoder;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/encodesignalevent(_:value:)
- (void)encodeSignalEvent:(id<MTLEvent>)event value:(uint64_t)value;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/encodewait(for:value:)
- (void)encodeWaitForEvent:(id<MTLEvent>)event value:(uint64_t)value;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/commit()
- (void)commit;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/waituntilcompleted()
- (void)waitUntilCompleted;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/status
@property(readonly) MTLCommandBufferStatus status;
// https://developer.apple.com/documentation/metal/mtlcommandbuffer/error
@property(readonly) NSError *error;
@end

// https://developer.apple.com/documentation/metal/mtlcommandqueue
@protocol MTLCommandQueue <NSObject>
// https://developer.apple.com/documentation/metal/mtlcommandqueue/makecommandbuffer()
- (id<MTLCommandBuffer>)commandBuffer;
@end

// https://developer.apple.com/documentation/metal/mtlcompileoptions
@interface MTLCompileOptions : NSObject <NSCopying>
// https://developer.apple.com/documentation/metal/mtlcompileoptions/languageversion
@property(readwrite, nonatomic) MTLLanguageVersion languageVersion;
// https://developer.apple.com/documentation/metal/mtlcompileoptions/mathmode
@property(readwrite, nonatomic) MTLMathMode mathMode;
// https://developer.apple.com/documentation/metal/mtlcompileoptions/fastmathenabled
@property(readwrite, nonatomic) BOOL fastMathEnabled;
@end

// https://developer.apple.com/documentation/metal/mtldevice
@protocol MTLDevice <NSObject>
// https://developer.apple.com/documentation/metal/mtldevice/makecomputepipelinestate(function:)
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)computeFunction
                                                             error:(NSError **)error;
// https://developer.apple.com/documentation/metal/mtldevice/makelibrary(source:options:)
- (id<MTLLibrary>)newLibraryWithSource:(NSString *)source
                               options:(MTLCompileOptions *)options
                                 error:(NSError **)error;
// https://developer.apple.com/documentation/metal/mtldevice/supportsfamily(_:)
- (BOOL)supportsFamily:(MTLGPUFamily)gpuFamily;
// https://developer.apple.com/documentation/metal/mtldevice/makesharedevent()
- (id<MTLSharedEvent>)newSharedEvent;
@end

// https://developer.apple.com/documentation/metal/mtlcreatesystemdefaultdevice()
extern id<MTLDevice> MTLCreateSystemDefaultDevice(void);
// https://developer.apple.com/documentation/metal/mtlcopyalldevices()
extern NSArray<id<MTLDevice>> *MTLCopyAllDevices(void);
